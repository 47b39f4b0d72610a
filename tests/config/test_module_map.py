from pathlib import Path

from config.module_map import module_map_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "modules.md"


def test_the_module_map_in_docs_matches_the_code():
    assert DOC.read_text() == module_map_markdown(), (
        "docs/modules.md is out of date: run `python manage.py describe_modules > docs/modules.md`"
    )


def test_the_map_names_every_saga_step():
    text = module_map_markdown()
    assert "- `orders.OrderPlaced` v1 → catalog" in text
    assert "- `catalog.StockReserved` v1 → orders" in text
    assert "`catalog.handlers.stock_reserve_on_order_placed`" in text

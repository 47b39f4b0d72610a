"""The benchmarks' bare comparator: a plain Django view replaying recorded SQL on a raw cursor."""

from __future__ import annotations


def bare_view(statements: list[tuple[str, tuple]]):
    """A view that runs ``statements`` on catalog's database and returns their rows as JSON.

    What the database and Django's request cycle cost, without DRF, the ORM, the selector, the
    pagination and the serializer: the floor an API view's cost is compared with.
    """
    from django.db import connections
    from django.http import JsonResponse

    def view(request):
        results = []
        with connections["catalog"].cursor() as cursor:
            for sql, params in statements:
                cursor.execute(sql, params)
                columns = [column[0] for column in cursor.description]
                results.append([dict(zip(columns, row, strict=True)) for row in cursor.fetchall()])
        return JsonResponse({"results": results}, json_dumps_params={"default": str})

    return view

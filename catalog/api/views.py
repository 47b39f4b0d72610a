"""catalog's HTTP API: thin views over selectors (reads) and services (writes).

Everyone may read; only staff may write (web.auth.IsStaffOrReadOnly). Withdrawn books
are left out of the public list; staff list them with ``?status=withdrawn`` or ``all``.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog import selectors, services
from catalog.api import schema  # noqa: F401  (registers the Book schema extension)
from catalog.api.filters import BookFilter
from catalog.api.pagination import KeysetPagination, SortKey
from catalog.api.serializers import (
    AuthorSerializer,
    AuthorWriteSerializer,
    BookSerializer,
    BookWriteSerializer,
    GenreSerializer,
    GenreWriteSerializer,
    StockAdjustSerializer,
    StockSerializer,
    StockSetSerializer,
    book_row_representation,
    book_rows_representation,
)
from catalog.models import Author, Book, Genre
from web.auth import IsStaff, IsStaffOrReadOnly

BOOK_ORDERINGS = {
    "title": ("title", False),
    "price": ("price", False),
    "year": ("publication_year", True),
    "created": ("created_at", False),
}
BOOK_ORDERING_CHOICES = [prefix + name for name in BOOK_ORDERINGS for prefix in ("", "-")]
STATUSES = ("active", "withdrawn", "all")


def is_staff(request: Request) -> bool:
    return IsStaff().has_permission(request, None)


def _book_or_404(book_id: int, *, include_withdrawn: bool = True) -> Book:
    book = selectors.book_get(book_id=book_id, include_withdrawn=include_withdrawn)
    if book is None:
        raise NotFound(f"No book with id {book_id}.")
    return book


def _book_response(request: Request, book_id: int, *, status_code: int = status.HTTP_200_OK) -> Response:
    book = _book_or_404(book_id)
    return Response(BookSerializer(book, context={"staff": is_staff(request)}).data, status=status_code)


def _book_changes(data: dict) -> dict:
    changes = {name: data[name] for name in services.BOOK_EDITABLE_FIELDS if name in data}
    if "author_ids" in data:
        changes["authors"] = data["author_ids"]
    if "genre_ids" in data:
        changes["genres"] = data["genre_ids"]
    if "active" in data:
        changes["active"] = data["active"]
    return changes


LIST_PARAMETERS = [
    OpenApiParameter(
        "search",
        OpenApiTypes.STR,
        description="Words that must all occur in the title or an author's name "
        "(PostgreSQL: full text, prefix per word, ranked; elsewhere: substring per word).",
    ),
    OpenApiParameter(
        "ordering",
        OpenApiTypes.STR,
        enum=BOOK_ORDERING_CHOICES,
        description="Sort key; '-' for descending. Default: title, or relevance when searching on PostgreSQL.",
    ),
    OpenApiParameter(
        "status",
        OpenApiTypes.STR,
        enum=list(STATUSES),
        description="Staff only: withdrawn or all books (default: active).",
    ),
]


class BookListView(GenericAPIView):
    permission_classes = [IsStaffOrReadOnly]
    serializer_class = BookSerializer
    pagination_class = KeysetPagination
    filterset_class = BookFilter

    def _status(self) -> str:
        value = self.request.query_params.get("status", "active") or "active"
        if value not in STATUSES:
            raise serializers.ValidationError({"status": [f"Must be one of {', '.join(STATUSES)}."]})
        if value != "active" and not is_staff(self.request):
            raise PermissionDenied("Only staff may list withdrawn books.")
        return value

    def get_queryset(self):
        book_status = self._status()
        return selectors.book_list(
            include_withdrawn=book_status == "all",
            only_withdrawn=book_status == "withdrawn",
            search=self.request.query_params.get("search", ""),
        )

    def get_sort_key(self, request: Request) -> SortKey:
        ordering = request.query_params.get("ordering", "")
        if not ordering:
            if selectors.search_words(request.query_params.get("search", "")) and (
                selectors.full_text_search_available()
            ):
                return SortKey("relevance", "search_rank", descending=True)
            ordering = "title"
        descending = ordering.startswith("-")
        name = ordering.removeprefix("-")
        if name not in BOOK_ORDERINGS:
            raise serializers.ValidationError(
                {"ordering": [f"Must be one of {', '.join(BOOK_ORDERING_CHOICES)}, not {ordering!r}."]}
            )
        field, nullable = BOOK_ORDERINGS[name]
        return SortKey(ordering, field, descending=descending, nullable=nullable)

    def get_serializer_context(self) -> dict:
        return {**super().get_serializer_context(), "staff": is_staff(self.request)}

    def _statement_shape(self) -> tuple | None:
        """What shapes the list's SQL before its page, when a compiled statement can serve it: no filter, no search."""
        params = self.request.query_params
        if params.keys() & BookFilter.base_filters.keys() or selectors.search_words(params.get("search", "")):
            return None
        return ("book_list", self._status())

    @extend_schema(parameters=LIST_PARAMETERS, responses=BookSerializer(many=True))
    def get(self, request: Request) -> Response:
        # Rows, not model instances: the same JSON as BookSerializer (tests/catalog/test_lean_books.py).
        shape = self._statement_shape()
        if shape is None:
            rows = self.paginate_queryset(selectors.book_values(self.filter_queryset(self.get_queryset())))
        else:  # a plain page, the common request: its SQL is compiled once per shape
            rows = self.paginator.paginate_statement(
                selectors.statements, shape, lambda: selectors.book_values(self.get_queryset()), Book, request, self
            )
        rows = selectors.book_rows_complete(rows)
        return self.get_paginated_response(book_rows_representation(rows, staff=is_staff(request)))

    @extend_schema(request=BookWriteSerializer, responses={201: BookSerializer})
    def post(self, request: Request) -> Response:
        payload = BookWriteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        book = services.book_create(**_book_changes(data), on_hand=data.get("on_hand", 0))
        return _book_response(request, book.pk, status_code=status.HTTP_201_CREATED)


class BookDetailView(APIView):
    permission_classes = [IsStaffOrReadOnly]

    @extend_schema(responses=BookSerializer)
    def get(self, request: Request, book_id: int) -> Response:
        row = selectors.book_row_get(book_id=book_id)
        if row is None:
            raise NotFound(f"No book with id {book_id}.")
        return Response(book_row_representation(row, staff=is_staff(request)))

    def _update(self, request: Request, book_id: int, *, partial: bool) -> Response:
        book = _book_or_404(book_id)
        payload = BookWriteSerializer(instance=book, data=request.data, partial=partial)
        payload.is_valid(raise_exception=True)
        services.book_update(book=book, **_book_changes(payload.validated_data))
        return _book_response(request, book.pk)

    @extend_schema(request=BookWriteSerializer, responses=BookSerializer)
    def put(self, request: Request, book_id: int) -> Response:
        return self._update(request, book_id, partial=False)

    @extend_schema(request=BookWriteSerializer, responses=BookSerializer)
    def patch(self, request: Request, book_id: int) -> Response:
        return self._update(request, book_id, partial=True)


class BookWithdrawView(APIView):
    """Stop selling a book (it stays in the database; PATCH ``active: true`` reinstates it)."""

    permission_classes = [IsStaff]

    @extend_schema(request=None, responses=BookSerializer)
    def post(self, request: Request, book_id: int) -> Response:
        services.book_withdraw(book=_book_or_404(book_id))
        return _book_response(request, book_id)


class BookStockView(APIView):
    """A book's stock in full (staff): set ``on_hand`` after a count."""

    permission_classes = [IsStaff]

    @extend_schema(responses=StockSerializer)
    def get(self, request: Request, book_id: int) -> Response:
        _book_or_404(book_id)
        return Response(StockSerializer(selectors.stock_get(book_id=book_id)).data)

    @extend_schema(request=StockSetSerializer, responses=StockSerializer)
    def put(self, request: Request, book_id: int) -> Response:
        book = _book_or_404(book_id)
        payload = StockSetSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        stock = services.stock_set(book=book, on_hand=payload.validated_data["on_hand"])
        return Response(StockSerializer(stock).data)


class BookStockAdjustView(APIView):
    """Receive (positive ``delta``) or write off (negative) copies, relative to what is there."""

    permission_classes = [IsStaff]

    @extend_schema(request=StockAdjustSerializer, responses=StockSerializer)
    def post(self, request: Request, book_id: int) -> Response:
        book = _book_or_404(book_id)
        payload = StockAdjustSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        stock = services.stock_adjust(book=book, delta=payload.validated_data["delta"])
        return Response(StockSerializer(stock).data)


class _NamedListView(GenericAPIView):
    """Authors or genres, by name, cursor-paginated; staff add them with POST."""

    permission_classes = [IsStaffOrReadOnly]
    pagination_class = KeysetPagination

    def get_sort_key(self, request: Request) -> SortKey:
        return SortKey("name", "name")


class AuthorListView(_NamedListView):
    serializer_class = AuthorSerializer

    def get_queryset(self):
        return selectors.author_list(search=self.request.query_params.get("search", ""))

    @extend_schema(
        parameters=[OpenApiParameter("search", OpenApiTypes.STR, description="Words of the author's name.")],
        responses=AuthorSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        return self.get_paginated_response(
            self.get_serializer(self.paginate_queryset(self.get_queryset()), many=True).data
        )

    @extend_schema(request=AuthorWriteSerializer, responses={201: AuthorSerializer})
    def post(self, request: Request) -> Response:
        payload = AuthorWriteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        author = services.author_create(name=payload.validated_data["name"])
        return Response(AuthorSerializer(author).data, status=status.HTTP_201_CREATED)


class AuthorDetailView(APIView):
    permission_classes = [IsStaffOrReadOnly]

    def _author(self, author_id: int) -> Author:
        author = selectors.author_get(author_id=author_id)
        if author is None:
            raise NotFound(f"No author with id {author_id}.")
        return author

    @extend_schema(responses=AuthorSerializer)
    def get(self, request: Request, author_id: int) -> Response:
        return Response(AuthorSerializer(self._author(author_id)).data)

    @extend_schema(request=AuthorWriteSerializer, responses=AuthorSerializer)
    def patch(self, request: Request, author_id: int) -> Response:
        payload = AuthorWriteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        author = services.author_update(author=self._author(author_id), name=payload.validated_data["name"])
        return Response(AuthorSerializer(author).data)


class GenreListView(_NamedListView):
    serializer_class = GenreSerializer

    def get_queryset(self):
        return selectors.genre_list()

    @extend_schema(responses=GenreSerializer(many=True))
    def get(self, request: Request) -> Response:
        return self.get_paginated_response(
            self.get_serializer(self.paginate_queryset(self.get_queryset()), many=True).data
        )

    @extend_schema(request=GenreWriteSerializer, responses={201: GenreSerializer})
    def post(self, request: Request) -> Response:
        payload = GenreWriteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        genre = services.genre_create(**payload.validated_data)
        return Response(GenreSerializer(genre).data, status=status.HTTP_201_CREATED)


class GenreDetailView(APIView):
    permission_classes = [IsStaffOrReadOnly]

    def _genre(self, genre_id: int) -> Genre:
        genre = selectors.genre_get(genre_id=genre_id)
        if genre is None:
            raise NotFound(f"No genre with id {genre_id}.")
        return genre

    @extend_schema(responses=GenreSerializer)
    def get(self, request: Request, genre_id: int) -> Response:
        return Response(GenreSerializer(self._genre(genre_id)).data)

    @extend_schema(request=GenreWriteSerializer, responses=GenreSerializer)
    def patch(self, request: Request, genre_id: int) -> Response:
        payload = GenreWriteSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        genre = services.genre_update(genre=self._genre(genre_id), **payload.validated_data)
        return Response(GenreSerializer(genre).data)

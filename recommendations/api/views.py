"""recommendations' HTTP API: read-only, answered from the in-memory model of this process."""

from __future__ import annotations

from dataclasses import asdict

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from recommendations import selectors
from recommendations.api.serializers import (
    CustomerPicksSerializer,
    LimitQuerySerializer,
    PopularBooksSerializer,
    PopularQuerySerializer,
    SimilarBooksSerializer,
)
from web.auth import IsCustomer, customer_id_of


def _query(serializer_class, request: Request) -> dict:
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _items(recommendations) -> list[dict]:
    return [{**asdict(item), "because": list(item.because)} for item in recommendations]


class SimilarBooksView(APIView):
    """Books to show next to one book: bought together with it, like it, or popular."""

    permission_classes = [AllowAny]

    @extend_schema(parameters=[LimitQuerySerializer], responses=SimilarBooksSerializer)
    def get(self, request: Request, book_id: int) -> Response:
        query = _query(LimitQuerySerializer, request)
        results = selectors.recommendations_similar(book_id=book_id, limit=query["limit"])
        return Response({"book_id": book_id, "results": _items(results)})


class CustomerPicksView(APIView):
    """Picks for the signed-in customer: never a book they own or a withdrawn one."""

    permission_classes = [IsCustomer]

    @extend_schema(parameters=[LimitQuerySerializer], responses=CustomerPicksSerializer)
    def get(self, request: Request) -> Response:
        query = _query(LimitQuerySerializer, request)
        customer_id = customer_id_of(request)
        results = selectors.recommendations_for_customer(customer_id=customer_id, limit=query["limit"])
        return Response({"customer_id": str(customer_id), "results": _items(results)})


class PopularBooksView(APIView):
    """The most bought books lately (time-decayed), optionally of one genre."""

    permission_classes = [AllowAny]

    @extend_schema(parameters=[PopularQuerySerializer], responses=PopularBooksSerializer)
    def get(self, request: Request) -> Response:
        query = _query(PopularQuerySerializer, request)
        genre = query.get("genre") or None
        results = selectors.recommendations_popular(limit=query["limit"], genre=genre)
        return Response({"genre": genre, "results": _items(results)})

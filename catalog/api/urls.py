from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.reverse import reverse

from catalog.api import views


@extend_schema(exclude=True)
@api_view(["GET"])
@permission_classes([AllowAny])
def module_root(request, format=None):
    """The catalog's resources."""
    return Response(
        {
            name: reverse(f"catalog:{name}", request=request, format=format)
            for name in ("book-list", "author-list", "genre-list")
        }
    )


app_name = "catalog"
urlpatterns = [
    path("", module_root, name="root"),
    path("books/", views.BookListView.as_view(), name="book-list"),
    path("books/<int:book_id>/", views.BookDetailView.as_view(), name="book-detail"),
    path("books/<int:book_id>/withdraw/", views.BookWithdrawView.as_view(), name="book-withdraw"),
    path("books/<int:book_id>/stock/", views.BookStockView.as_view(), name="book-stock"),
    path("books/<int:book_id>/stock/adjust/", views.BookStockAdjustView.as_view(), name="book-stock-adjust"),
    path("authors/", views.AuthorListView.as_view(), name="author-list"),
    path("authors/<int:author_id>/", views.AuthorDetailView.as_view(), name="author-detail"),
    path("genres/", views.GenreListView.as_view(), name="genre-list"),
    path("genres/<int:genre_id>/", views.GenreDetailView.as_view(), name="genre-detail"),
]

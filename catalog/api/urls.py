from django.urls import path

from catalog.api import views
from web.api import module_root_view

module_root = module_root_view("catalog", ["book-list", "author-list", "genre-list"])

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

from django.urls import path

from recommendations.api import views
from web.api import module_root_view

module_root = module_root_view("recommendations", ["me", "popular"], templates={"similar": "books/{book_id}/similar/"})

app_name = "recommendations"
urlpatterns = [
    path("", module_root, name="root"),
    path("books/<int:book_id>/similar/", views.SimilarBooksView.as_view(), name="similar"),
    path("me/", views.CustomerPicksView.as_view(), name="me"),
    path("popular/", views.PopularBooksView.as_view(), name="popular"),
]

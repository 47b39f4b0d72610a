from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.reverse import reverse

from recommendations.api import views


@extend_schema(exclude=True)
@api_view(["GET"])
@permission_classes([AllowAny])
def module_root(request, format=None):
    """The recommendation resources (``similar`` takes a book id: books/<id>/similar/)."""
    return Response(
        {
            "me": reverse("recommendations:me", request=request, format=format),
            "popular": reverse("recommendations:popular", request=request, format=format),
            "similar": request.build_absolute_uri("books/{book_id}/similar/"),
        }
    )


app_name = "recommendations"
urlpatterns = [
    path("", module_root, name="root"),
    path("books/<int:book_id>/similar/", views.SimilarBooksView.as_view(), name="similar"),
    path("me/", views.CustomerPicksView.as_view(), name="me"),
    path("popular/", views.PopularBooksView.as_view(), name="popular"),
]

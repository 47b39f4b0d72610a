from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.reverse import reverse

from accounts.api import views


@extend_schema(exclude=True)
@api_view(["GET"])
@permission_classes([AllowAny])
def module_root(request, format=None):
    names = ["register", "token", "token-refresh", "me", "password-change", "addresses"]
    return Response({name: reverse(f"accounts:{name}", request=request, format=format) for name in names})


app_name = "accounts"
urlpatterns = [
    path("", module_root, name="root"),
    path("register/", views.RegisterView.as_view(), name="register"),
    path("token/", views.TokenObtainView.as_view(), name="token"),
    path("token/refresh/", views.TokenRefreshView.as_view(), name="token-refresh"),
    path("me/", views.MeView.as_view(), name="me"),
    path("me/password/", views.PasswordChangeView.as_view(), name="password-change"),
    path("addresses/", views.AddressListView.as_view(), name="addresses"),
    path("addresses/<uuid:address_id>/", views.AddressDetailView.as_view(), name="address"),
]

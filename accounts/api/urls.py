from django.urls import path

from accounts.api import views
from web.api import module_root_view

module_root = module_root_view(
    "accounts", ["register", "token", "token-refresh", "me", "email-change", "password-change", "addresses"]
)

app_name = "accounts"
urlpatterns = [
    path("", module_root, name="root"),
    path("register/", views.RegisterView.as_view(), name="register"),
    path("token/", views.TokenObtainView.as_view(), name="token"),
    path("token/refresh/", views.TokenRefreshView.as_view(), name="token-refresh"),
    path("me/", views.MeView.as_view(), name="me"),
    path("me/email/", views.EmailChangeView.as_view(), name="email-change"),
    path("me/password/", views.PasswordChangeView.as_view(), name="password-change"),
    path("addresses/", views.AddressListView.as_view(), name="addresses"),
    path("addresses/<uuid:address_id>/", views.AddressDetailView.as_view(), name="address"),
]

"""Request and response shapes of the accounts API. Inputs name only the fields a customer may set."""

from __future__ import annotations

from django.db import models
from rest_framework import serializers

from accounts.models import Address, Customer
from web.fields import StrictBooleanField, StrictCharField

PASSWORD_MAX_LENGTH = 1024  # long passphrases yes, megabyte "passwords" that keep a hasher busy no


def password_field(**kwargs) -> serializers.CharField:
    return serializers.CharField(
        write_only=True,
        trim_whitespace=False,
        max_length=PASSWORD_MAX_LENGTH,
        style={"input_type": "password"},
        **kwargs,
    )


class CustomerSerializer(serializers.ModelSerializer):
    class Meta:
        model = Customer
        fields = ["id", "email", "name", "created_at", "updated_at"]
        read_only_fields = fields


class RegisterSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = password_field()
    name = StrictCharField(max_length=150)


class CustomerUpdateSerializer(serializers.Serializer):
    name = StrictCharField(max_length=150, required=False)

    def to_internal_value(self, data):
        # Not silently ignored: a client that sends an email here must learn where it is changed.
        if isinstance(data, dict) and "email" in data:
            raise serializers.ValidationError(
                {"email": ["Change your email at /api/accounts/me/email/, with your current password."]},
                code="email_change_elsewhere",
            )
        return super().to_internal_value(data)


class EmailChangeSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = password_field(help_text="Your current password.")


class EmailChangeReceivedSerializer(serializers.Serializer):
    """The same answer whether the email was free (and is now yours) or another account has it."""

    email = serializers.EmailField(help_text="The email asked for, as it would be stored (lower case).")
    detail = serializers.CharField()


class SignInSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = password_field()


class RefreshSerializer(serializers.Serializer):
    refresh = serializers.CharField()


class PasswordChangeSerializer(serializers.Serializer):
    old_password = password_field()
    new_password = password_field()


class AccessTokenSerializer(serializers.Serializer):
    access = serializers.CharField(help_text="Send as `Authorization: Bearer <access>` to every module.")
    token_type = serializers.CharField(default="Bearer")
    expires_in = serializers.IntegerField(help_text="Seconds until the access token expires.")


class TokenPairSerializer(AccessTokenSerializer):
    refresh = serializers.CharField(help_text="Trade for a new access token at /api/accounts/token/refresh/.")


class RegistrationSerializer(serializers.Serializer):
    """The same answer whether the email was free or already had an account (no enumeration)."""

    email = serializers.EmailField(help_text="The email, as it will be stored (lower case).")
    detail = serializers.CharField()
    sign_in = serializers.CharField(help_text="Where to sign in with this email and password.")


class AddressSerializer(serializers.ModelSerializer):
    OPTIONAL_TEXT_FIELDS = ("label", "line2", "region", "phone")
    is_default = StrictBooleanField(required=False, help_text="The address orders go to unless told otherwise.")
    # A number where text belongs is an error, not silently "0" (every text column of the model).
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: StrictCharField,
    }

    class Meta:
        model = Address
        fields = [
            "id",
            "label",
            "recipient",
            "line1",
            "line2",
            "city",
            "region",
            "postal_code",
            "country",
            "phone",
            "is_default",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]

    def to_internal_value(self, data):
        # Accept "gb" as well as "GB": the code is what matters, not its case.
        if isinstance(data, dict) and isinstance(data.get("country"), str):
            data = {**data, "country": data["country"].strip().upper()}
        return super().to_internal_value(data)

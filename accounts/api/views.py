"""The accounts API: thin views over services and selectors."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import AuthenticationFailed, NotFound
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors, services, tokens
from accounts.api.serializers import (
    AccessTokenSerializer,
    AddressSerializer,
    CustomerSerializer,
    CustomerUpdateSerializer,
    EmailChangeReceivedSerializer,
    EmailChangeSerializer,
    PasswordChangeSerializer,
    RefreshSerializer,
    RegisterSerializer,
    RegistrationSerializer,
    SignInSerializer,
    TokenPairSerializer,
)
from accounts.errors import BEARER_CHALLENGE
from accounts.models import Address, Customer, normalize_email
from web.auth import IsCustomer, customer_id_of
from web.throttling import AccountFailureThrottle, AddressThrottle, CustomerThrottle, WritesThrottled, failures_record


class AccountsView(APIView):
    """Services raise Django's ValidationError and accounts' errors; web.problems maps both."""


class PublicView(AccountsView):
    """Reached without a token; a stale Authorization header must not block signing in."""

    authentication_classes = []
    permission_classes = [AllowAny]

    def get_authenticate_header(self, request):
        # A refused sign-in is 401 with a challenge, not DRF's fallback 403.
        return BEARER_CHALLENGE


class CustomerView(AccountsView):
    permission_classes = [IsCustomer]

    def signed_in_customer(self) -> Customer:
        customer = selectors.customer_get(customer_id=customer_id_of(self.request))
        if customer is None or not customer.is_active:
            raise AuthenticationFailed("This customer account no longer exists or is deactivated.")
        return customer


REGISTERED = (
    "Registration received. Sign in with this email and password. If this email already had an "
    "account, nothing was changed: sign in with that account's password instead."
)


class RegisterView(PublicView):
    """202 with the same body whether the account was created or the email was taken.

    Anything else (a 400 on a taken email, tokens only for a new account) would tell anyone
    which emails are registered. A new customer signs in next; one who forgot they had an
    account reads, in the same answer, that their earlier password still applies.
    """

    # Registration is free: unthrottled, one client could mint customers (and their stock caps) at will.
    throttle_scope = "register"
    throttle_classes = [AddressThrottle]

    @extend_schema(request=RegisterSerializer, responses={202: RegistrationSerializer}, summary="Register")
    def post(self, request):
        serializer = RegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.customer_register(**serializer.validated_data)
        body = {
            "email": normalize_email(serializer.validated_data["email"]),
            "detail": REGISTERED,
            "sign_in": "/api/accounts/token/",
        }
        return Response(body, status=status.HTTP_202_ACCEPTED)


class TokenObtainView(PublicView):
    # Every attempt by address (the hasher's flood guard); failures by email *and* address, so that
    # nobody can lock a customer out by failing on purpose (web.throttling, "Failures, not attempts").
    throttle_scope = "sign_in"
    throttle_classes = [AddressThrottle, AccountFailureThrottle]

    @extend_schema(request=SignInSerializer, responses={200: TokenPairSerializer}, summary="Sign in")
    def post(self, request):
        serializer = SignInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        customer = services.customer_authenticate(**serializer.validated_data)
        if customer is None:
            failures_record(self, request)
            raise AuthenticationFailed("No active customer with this email and password.", code="bad_credentials")
        return Response(tokens.token_pair_for(customer))


class TokenRefreshView(PublicView):
    throttle_scope = "refresh"
    throttle_classes = [AddressThrottle]

    @extend_schema(request=RefreshSerializer, responses={200: AccessTokenSerializer}, summary="Refresh access token")
    def post(self, request):
        serializer = RefreshSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        _, access = tokens.access_token_refresh(refresh=serializer.validated_data["refresh"])
        return Response(
            {"access": str(access), "token_type": "Bearer", "expires_in": tokens.access_token_lifetime_seconds()}
        )


class MeView(CustomerView):
    @extend_schema(responses={200: CustomerSerializer}, summary="My profile")
    def get(self, request):
        return Response(CustomerSerializer(self.signed_in_customer()).data)

    @extend_schema(
        request=CustomerUpdateSerializer,
        responses={200: CustomerSerializer},
        summary="Change my profile",
        description="The name; the email is changed at `me/email/`, with the current password.",
    )
    def patch(self, request):
        serializer = CustomerUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        customer = services.customer_update(customer=self.signed_in_customer(), **serializer.validated_data)
        return Response(CustomerSerializer(customer).data)


EMAIL_CHANGE_RECEIVED = (
    "Email change received. If no other account uses this email, it is now the one you sign in with; "
    "if another account does, nothing was changed. Your profile shows the email in use."
)


class EmailChangeView(CustomerView):
    """202 with the same body whether the email was free (and changed) or taken (and nothing changed).

    A 400 on a taken email would let anyone with an account test which emails are registered,
    as registration would have. The password is asked for because an email is how an account
    is recovered: a stolen access token must not be enough to move it to another mailbox.
    """

    throttle_scope = "email_change"
    throttle_classes = [CustomerThrottle, AddressThrottle]

    @extend_schema(
        request=EmailChangeSerializer,
        responses={202: EmailChangeReceivedSerializer},
        summary="Change my email",
        description="Takes effect only if no other account uses the email; the answer is the same either way.",
    )
    def post(self, request):
        serializer = EmailChangeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.customer_email_change(customer=self.signed_in_customer(), **serializer.validated_data)
        body = {"email": normalize_email(serializer.validated_data["email"]), "detail": EMAIL_CHANGE_RECEIVED}
        return Response(body, status=status.HTTP_202_ACCEPTED)


class PasswordChangeView(CustomerView):
    # A stolen access token must not buy unlimited guesses at the current password.
    throttle_scope = "password_change"
    throttle_classes = [CustomerThrottle, AddressThrottle]

    @extend_schema(
        request=PasswordChangeSerializer,
        responses={200: TokenPairSerializer},
        summary="Change my password",
        description="Older refresh tokens stop working; the response carries a fresh pair for this session.",
    )
    def post(self, request):
        serializer = PasswordChangeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        customer = services.customer_password_change(customer=self.signed_in_customer(), **serializer.validated_data)
        return Response(tokens.token_pair_for(customer))


class AddressListView(WritesThrottled, CustomerView, GenericAPIView):
    throttle_scope = "address_write"
    serializer_class = AddressSerializer
    queryset = Address.objects.none()  # for the schema only: addresses are read through selectors

    @extend_schema(responses={200: AddressSerializer(many=True)}, summary="My addresses")
    def get(self, request):
        addresses = selectors.address_list(customer_id=self.signed_in_customer().id)
        page = self.paginate_queryset(addresses)
        return self.get_paginated_response(AddressSerializer(page, many=True).data)

    @extend_schema(request=AddressSerializer, responses={201: AddressSerializer}, summary="Add an address")
    def post(self, request):
        serializer = AddressSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        address = services.address_create(customer_id=self.signed_in_customer().id, data=serializer.validated_data)
        return Response(AddressSerializer(address).data, status=status.HTTP_201_CREATED)


class AddressDetailView(WritesThrottled, CustomerView, GenericAPIView):
    throttle_scope = "address_write"
    serializer_class = AddressSerializer
    queryset = Address.objects.none()  # for the schema only: addresses are read through selectors

    def owned_address(self, address_id):
        address = selectors.address_get(customer_id=self.signed_in_customer().id, address_id=address_id)
        if address is None:
            raise NotFound("You have no address with this id.")
        return address

    @extend_schema(responses={200: AddressSerializer}, summary="One of my addresses")
    def get(self, request, address_id):
        return Response(AddressSerializer(self.owned_address(address_id)).data)

    def _update(self, request, address_id, *, partial: bool):
        address = self.owned_address(address_id)
        serializer = AddressSerializer(data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if not partial:
            # A replacement clears the optional lines it leaves out; the default mark stays unless given.
            data = {**dict.fromkeys(AddressSerializer.OPTIONAL_TEXT_FIELDS, ""), **data}
        address = services.address_update(address=address, data=data)
        return Response(AddressSerializer(address).data)

    @extend_schema(request=AddressSerializer, responses={200: AddressSerializer}, summary="Replace an address")
    def put(self, request, address_id):
        return self._update(request, address_id, partial=False)

    @extend_schema(request=AddressSerializer, responses={200: AddressSerializer}, summary="Change an address")
    def patch(self, request, address_id):
        return self._update(request, address_id, partial=True)

    @extend_schema(responses={204: None}, summary="Delete an address")
    def delete(self, request, address_id):
        services.address_delete(address=self.owned_address(address_id))
        return Response(status=status.HTTP_204_NO_CONTENT)

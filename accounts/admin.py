"""Customers and addresses in the Django admin. The password hash is never a text box: staff set a new password."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.hashers import identify_hasher
from django.contrib.auth.password_validation import password_validators_help_text_html, validate_password
from django.core.exceptions import ValidationError

from accounts.models import Address, Customer, normalize_email
from accounts.services import customer_delete, customer_save_by_operator, customer_set_active


class CustomerAdminForm(forms.ModelForm):
    new_password = forms.CharField(
        label="New password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Required for a new customer. Leave empty to keep the current password. "
        + password_validators_help_text_html(),
    )
    new_password_again = forms.CharField(
        label="New password (again)",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )

    class Meta:
        model = Customer
        fields = ["email", "name", "is_active"]

    def clean_email(self) -> str:
        return normalize_email(self.cleaned_data["email"])

    def clean(self):
        cleaned = super().clean()
        password, again = cleaned.get("new_password"), cleaned.get("new_password_again")
        if self.instance._state.adding and not password:
            self.add_error("new_password", "A new customer needs a password.")
        elif password or again:
            if password != again:
                self.add_error("new_password_again", "The two passwords differ.")
            else:
                probe = Customer(email=cleaned.get("email", ""), name=cleaned.get("name", ""))
                try:
                    validate_password(password, user=probe)
                except ValidationError as error:
                    self.add_error("new_password", error)
        return cleaned


class AddressInline(admin.StackedInline):
    model = Address
    extra = 0
    fields = [
        ("label", "is_default"),
        "recipient",
        "line1",
        "line2",
        ("city", "region", "postal_code", "country"),
        "phone",
    ]
    show_change_link = True


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    form = CustomerAdminForm
    list_display = ["email", "name", "is_active", "created_at"]
    list_filter = ["is_active", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["email", "name"]
    date_hierarchy = "created_at"
    ordering = ["-created_at"]
    readonly_fields = ["id", "password_summary", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["email", "name", "is_active"]}),
        ("Password", {"fields": ["password_summary", "new_password", "new_password_again"]}),
        ("Record", {"fields": ["id", "created_at", "updated_at"], "classes": ["collapse"]}),
    ]
    inlines = [AddressInline]
    actions = ["deactivate", "activate"]

    @admin.display(description="password")
    def password_summary(self, customer: Customer) -> str:
        if not customer.password_hash:
            return "not set yet"
        if not customer.has_usable_password:
            return "no usable password (cannot sign in)"
        try:
            algorithm = identify_hasher(customer.password_hash).algorithm
        except ValueError:
            return "stored in an unknown format"
        return f"set, hashed with {algorithm} (the hash is never shown)"

    def save_model(self, request, obj, form, change):
        # Through the service, so that the admin publishes the same events as the API.
        customer_save_by_operator(customer=obj, password=form.cleaned_data.get("new_password") or None)

    # Deletion goes through the service too, so that every module learns of it (accounts.CustomerDeleted).
    def delete_model(self, request, obj):
        customer_delete(customer_ids=[obj.id])

    def delete_queryset(self, request, queryset):
        customer_delete(customer_ids=list(queryset.values_list("id", flat=True)))

    @admin.action(description="Deactivate selected customers (they can no longer sign in)")
    def deactivate(self, request, queryset):
        count = customer_set_active(customer_ids=list(queryset.values_list("id", flat=True)), is_active=False)
        self.message_user(request, f"{count} customer(s) deactivated.", messages.SUCCESS)

    @admin.action(description="Activate selected customers")
    def activate(self, request, queryset):
        count = customer_set_active(customer_ids=list(queryset.values_list("id", flat=True)), is_active=True)
        self.message_user(request, f"{count} customer(s) activated.", messages.SUCCESS)


@admin.register(Address)
class AddressAdmin(admin.ModelAdmin):
    list_display = ["__str__", "customer", "recipient", "city", "postal_code", "country", "is_default", "created_at"]
    list_filter = ["country", "is_default"]
    search_fields = ["customer__email", "customer__name", "recipient", "line1", "city", "postal_code"]
    list_select_related = ["customer"]
    autocomplete_fields = ["customer"]
    readonly_fields = ["id", "created_at", "updated_at"]
    ordering = ["-created_at"]

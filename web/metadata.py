"""What ``OPTIONS`` answers: the allowed methods and, where the caller may write, the fields."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions
from rest_framework.metadata import SimpleMetadata
from rest_framework.request import clone_request


class Metadata(SimpleMetadata):
    """DRF's SimpleMetadata without its object lookup.

    SimpleMetadata calls ``view.get_object()`` for PUT, which needs a ``queryset`` and a ``pk``
    URL argument: Quire's views read through selectors and name their ids (``book_id``), so an
    OPTIONS request by a signed-in customer ended in an AssertionError (a 500). Object access is
    decided by the selectors when the real request comes; OPTIONS only tells what may be sent.
    """

    def determine_actions(self, request, view):
        actions = {}
        for method in {"PUT", "POST"} & set(view.allowed_methods):
            view.request = clone_request(request, method)
            try:
                view.check_permissions(view.request)
                serializer = view.get_serializer() if hasattr(view, "get_serializer") else None
            except (exceptions.APIException, PermissionDenied, Http404):
                continue
            finally:
                view.request = request
            if serializer is not None:
                actions[method] = self.get_serializer_info(serializer)
        return actions

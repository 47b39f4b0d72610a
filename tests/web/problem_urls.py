"""config.urls plus views that fail on purpose, to see every error as problem details."""

from django.urls import path
from rest_framework import serializers
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny

from config.urls import urlpatterns as project_urlpatterns


class ShelfSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=5)
    books = serializers.ListField(child=serializers.IntegerField(min_value=1))


@api_view(["POST"])
@permission_classes([AllowAny])
def validate_shelf(request):
    ShelfSerializer(data=request.data).is_valid(raise_exception=True)


@api_view(["GET"])
@permission_classes([AllowAny])
def explode(request):
    raise ZeroDivisionError("a bug")


urlpatterns = [path("api/test/shelf/", validate_shelf), path("api/test/explode/", explode), *project_urlpatterns]

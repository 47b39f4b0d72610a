from __future__ import annotations

from rest_framework import serializers

from recommendations.records import REASONS
from web.fields import WholeNumberField

DEFAULT_LIMIT = 10
MAX_LIMIT = 50


class LimitQuerySerializer(serializers.Serializer):
    limit = WholeNumberField(
        min_value=1,
        default=DEFAULT_LIMIT,
        help_text=f"How many books (default {DEFAULT_LIMIT}); larger values are capped at {MAX_LIMIT}.",
    )

    def validate_limit(self, value: int) -> int:
        return min(value, MAX_LIMIT)


class PopularQuerySerializer(LimitQuerySerializer):
    genre = serializers.CharField(
        required=False, allow_blank=True, max_length=100, help_text="Only books of this genre (case-insensitive)."
    )


class RecommendationSerializer(serializers.Serializer):
    book_id = serializers.IntegerField()
    title = serializers.CharField()
    score = serializers.FloatField(help_text="Blended score in [0, ~1.5]; only the order is meaningful.")
    reason = serializers.ChoiceField(choices=REASONS, help_text="The part of the blend that counted most.")
    because = serializers.ListField(
        child=serializers.IntegerField(),
        help_text="The books that led to this one (the viewed book, or the customer's purchases); empty for popular.",
    )


class SimilarBooksSerializer(serializers.Serializer):
    book_id = serializers.IntegerField()
    results = RecommendationSerializer(many=True)


class CustomerPicksSerializer(serializers.Serializer):
    customer_id = serializers.UUIDField()
    results = RecommendationSerializer(many=True)


class PopularBooksSerializer(serializers.Serializer):
    genre = serializers.CharField(allow_null=True)
    results = RecommendationSerializer(many=True)

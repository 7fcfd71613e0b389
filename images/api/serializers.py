"""Photos, results with signed links, and passport photos over the API."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import serializers

from images.models import ResultKind
from orders.forms import PassportForm, PhotoUploadForm

PREVIEW_STATUSES = [
    ("processing", "Being made"),
    ("ready", "Ready"),
    ("failed", "The photo cannot be used"),
    ("deleted", "Deleted on schedule"),
]


class PhotoUploadSerializer(serializers.Serializer[Any]):
    """The upload form's fields; the files themselves are checked by the upload service."""

    photos = serializers.ListField(
        child=serializers.FileField(allow_empty_file=True, use_url=False),
        required=False,
        help_text=f"One or more images (at most {settings.UPLOAD_MAX_FILES} per order).",
    )
    note = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=int(PhotoUploadForm.base_fields["note"].max_length),  # type: ignore[attr-defined]
        help_text="Instructions for these photos (optional).",
    )


class ResultLinkSerializer(serializers.Serializer[Any]):
    """A result with short-lived signed links: anyone holding one can fetch the file."""

    id = serializers.IntegerField(read_only=True)
    kind = serializers.ChoiceField(choices=ResultKind.choices, read_only=True)
    kind_label = serializers.CharField(read_only=True)
    round = serializers.IntegerField(read_only=True)
    filename = serializers.CharField(read_only=True)
    content_type = serializers.CharField(read_only=True)
    width = serializers.IntegerField(read_only=True)
    height = serializers.IntegerField(read_only=True)
    size_bytes = serializers.IntegerField(read_only=True)
    url = serializers.CharField(read_only=True, help_text="Shows the file (inline).")
    download_url = serializers.CharField(read_only=True, help_text="Downloads the file.")
    expires_at = serializers.DateTimeField(
        read_only=True, help_text="The links stop working after this (at most 5 minutes)."
    )


class DocumentSerializer(serializers.Serializer[Any]):
    key = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)
    country = serializers.CharField(read_only=True, help_text="ISO 3166-1 alpha-2; EU: Schengen.")
    width_mm = serializers.FloatField(read_only=True)
    height_mm = serializers.FloatField(read_only=True)
    head_min_mm = serializers.FloatField(read_only=True, help_text="Chin to crown.")
    head_max_mm = serializers.FloatField(read_only=True)
    print_width_px = serializers.IntegerField(read_only=True)
    print_height_px = serializers.IntegerField(read_only=True)
    dpi = serializers.IntegerField(read_only=True)
    digital_width_px = serializers.IntegerField(read_only=True)
    digital_height_px = serializers.IntegerField(read_only=True)
    digital_max_bytes = serializers.IntegerField(read_only=True, allow_null=True)
    background = serializers.CharField(read_only=True)
    # DRF's metaclass takes declared fields off the class: this does not shadow Field.source.
    source = serializers.CharField(  # type: ignore[assignment]
        read_only=True, help_text="The official requirement cited."
    )
    price_minor = serializers.IntegerField(read_only=True)
    currency = serializers.CharField(read_only=True)


class PassportCreateSerializer(serializers.Serializer[Any]):
    document = serializers.ChoiceField(
        choices=PassportForm.base_fields["document"].choices,  # type: ignore[attr-defined]
        help_text="A key from GET /api/v1/passport/documents/.",
    )
    selfie = serializers.FileField(
        allow_empty_file=True,
        use_url=False,
        help_text="One photo of the face, as for the web form.",
    )


class PassportPreviewSerializer(serializers.Serializer[Any]):
    reference = serializers.CharField(read_only=True)
    status = serializers.ChoiceField(choices=PREVIEW_STATUSES, read_only=True)
    reason = serializers.CharField(
        read_only=True, help_text="Why it failed, or why work is paused ('' otherwise)."
    )
    preview = ResultLinkSerializer(
        read_only=True, allow_null=True, help_text="The watermarked preview, once ready."
    )


class PassportFilesSerializer(serializers.Serializer[Any]):
    reference = serializers.CharField(read_only=True)
    files = ResultLinkSerializer(
        many=True,
        read_only=True,
        help_text="The digital file and the print sheet (empty once deleted on schedule).",
    )

"""Multipart forms as the upload route needs them, on top of Werkzeug's parser.

* A part's headers are read as UTF-8, as browsers send them, else as Latin-1 (every byte is a character):
  Werkzeug's own parser gives up on the whole form at a filename in another encoding, so the upload was told
  "no file in the form field 'audio'" although the file was there. The name is only ever shown.
* Each of Werkzeug's form limits gets its own sentence. It raises one bare 413 for all of them, so a form with
  too many parts, or a 3 MB text field, was told it was "larger than this server's limit of 512 MB".
"""

from __future__ import annotations

from typing import Any

from werkzeug import formparser
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.sansio.multipart import MultipartDecoder


class FormTooLarge(RequestEntityTooLarge):
    """A form limit other than the upload's size (the description says which)."""


class _Decoder(MultipartDecoder):
    def _parse_headers(self, data: Any) -> Any:
        try:
            return super()._parse_headers(data)
        except UnicodeDecodeError:
            return super()._parse_headers(bytes(data).decode("latin-1").encode("utf-8"))

    def receive_data(self, data: bytes | None) -> None:
        try:
            super().receive_data(data)
        except FormTooLarge:
            raise
        except RequestEntityTooLarge:
            raise FormTooLarge(field_too_large(self.max_form_memory_size)) from None

    def next_event(self) -> Any:
        try:
            return super().next_event()
        except FormTooLarge:
            raise
        except RequestEntityTooLarge:
            raise FormTooLarge(f"the form has more than {self.max_parts} parts: send the recording in the field "
                               "'audio' with only the fields the API names") from None


def field_too_large(limit_bytes: int | None) -> str:
    return (f"a form field other than the file holds more than {(limit_bytes or 0) // 1000} KB: send the "
            "recording as a file in the field 'audio' (only a file may be large)")


formparser.MultipartDecoder = _Decoder  # the name Werkzeug's MultiPartParser builds its decoder from

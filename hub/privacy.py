"""Keep personal data and secrets out of logs: masks for phones and addresses, and a
logging filter that redacts credentials, signatures and phone numbers from any record."""
from __future__ import annotations

import logging
import re
from collections.abc import Iterable

_MOBILE = re.compile(r"(?<!\d)(1[3-9]\d)(\d{4})(\d{4})(?!\d)")
_AUTH_HEADER = re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)([^'\",}\r\n]+)")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]{12,}")
# key=..., "secret": "...", signature=..., sign=... in query strings, dict reprs and JSON
_SECRET_PAIR = re.compile(
    r"(?i)(['\"]?\b[\w-]*(?:key|secret|password|token|signature|sign|checkword|salt)\b['\"]?\s*[:=]\s*['\"]?)"
    r"([^'\"&\s,}]+)")
REDACTED = "[redacted]"


def mask_phone(phone: str | None) -> str:
    """138****8000: enough to tell two buyers apart, not enough to call them."""
    if not phone:
        return ""
    digits = str(phone)
    if len(digits) < 7:
        return "****"
    return digits[:3] + "****" + digits[-4:]


def mask_address(text: str | None) -> str:
    """Keep the start (district, road) and hide the rest: house numbers identify a person."""
    if not text:
        return ""
    keep = max(min(len(text) // 3, 12), 2)
    return text[:keep] + "****"


def mask_phones_in(text: str) -> str:
    return _MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Remove credentials, signatures and known secret values; mask mobile numbers."""
    for value in secrets:
        if value and len(value) >= 6:
            text = text.replace(value, REDACTED)
    text = _AUTH_HEADER.sub(lambda m: m.group(1) + REDACTED, text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    text = _SECRET_PAIR.sub(lambda m: m.group(1) + REDACTED, text)
    return mask_phones_in(text)


class RedactingFilter(logging.Filter):
    """Rewrites each record's message with secrets and phone numbers removed.

    Logger filters do not apply to records propagated from child loggers, so install it
    on every logger whose records must be clean (see `install`)."""

    def __init__(self, secrets: Iterable[str] = ()):
        super().__init__()
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep what we can, redacted
            message = str(record.msg)
        record.msg, record.args = redact(message, self.secrets), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info), self.secrets)
            record.exc_info = None
        return True


def install(logger: logging.Logger | str, secrets: Iterable[str] = ()) -> RedactingFilter:
    """Put one RedactingFilter on `logger` (replacing an earlier one) and return it."""
    log = logging.getLogger(logger) if isinstance(logger, str) else logger
    for old in [f for f in log.filters if isinstance(f, RedactingFilter)]:
        log.removeFilter(old)
    flt = RedactingFilter(secrets)
    log.addFilter(flt)
    return flt

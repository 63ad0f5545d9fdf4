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
    r"(?i)(['\"]?\b[\w-]*(?:key|secret|password|token|signature|sign|checkword|salt|app_?id)\b['\"]?\s*[:=]\s*['\"]?)"
    r"([^'\"&\s,}]+)")
# An address in a dict, JSON or dataclass repr: {'address': '...'}, "receiver_address": "...",
# "address": {"text": "..."} and Address(text='...'). Its start (district, road) stays; the door goes.
# (the value runs to its own closing quote: "Near Jing'an temple" is one value)
_ADDRESS_PAIR = re.compile(r"(?i)(['\"]?\b\w*address\b['\"]?\s*[:=]\s*)(['\"])((?:(?!\2).){2,}?)\2")
_ADDRESS_TEXT = re.compile(r"(?i)((?:address['\"]?\s*[:=]\s*\{\s*|Address\()['\"]?text['\"]?\s*[:=]\s*)"
                           r"(['\"])((?:(?!\2).){2,}?)\2")
REDACTED = "[redacted]"
MASKED = "****"


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
    if text.endswith(MASKED):          # masked already (two filters on one record's way)
        return text
    keep = max(min(len(text) // 3, 12), 2)
    return text[:keep] + MASKED


def mask_addresses_in(text: str) -> str:
    """Mask the addresses a record carries in a dict, JSON or dataclass repr."""
    def masked(m: re.Match[str]) -> str:
        return f"{m.group(1)}{m.group(2)}{mask_address(m.group(3))}{m.group(2)}"
    return _ADDRESS_PAIR.sub(masked, _ADDRESS_TEXT.sub(masked, text))


def mask_phones_in(text: str) -> str:
    return _MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Remove credentials, signatures, tokens in URLs (access_token=, secret=) and known secret values;
    mask mobile numbers and addresses."""
    for value in secrets:
        if value and len(value) >= 6:
            text = text.replace(value, REDACTED)
    text = _AUTH_HEADER.sub(lambda m: m.group(1) + REDACTED, text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    text = _SECRET_PAIR.sub(lambda m: m.group(1) + REDACTED, text)
    return mask_addresses_in(mask_phones_in(text))


class RedactingFilter(logging.Filter):
    """Rewrites each record's message with secrets removed and phone numbers and addresses masked.

    Logger filters do not apply to records propagated from child loggers: `protect_root` puts one on
    the root logger's handlers, which every logger's records reach (urllib3's URLs, SQLAlchemy's, nameko's)."""

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


# Every secret a process has been told of (its config's keys): the root handlers' filters know them all.
_ROOT_SECRETS: set[str] = set()


def protect_root(secrets: Iterable[str] = ()) -> None:
    """Put one RedactingFilter, knowing `secrets` and every earlier one, on each handler of the root
    logger (replacing an earlier one): every record any logger lets through is cleaned before it is
    written. `hub.logs.configure` calls it again for the handler it installs."""
    _ROOT_SECRETS.update(s for s in secrets if s)
    for handler in logging.getLogger().handlers:
        protect_handler(handler)


def protect_handler(handler: logging.Handler) -> RedactingFilter:
    for old in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
        handler.removeFilter(old)
    flt = RedactingFilter(_ROOT_SECRETS)
    handler.addFilter(flt)
    return flt

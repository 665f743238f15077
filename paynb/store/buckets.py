"""The two places pay files live, opened from settings in one way for every feature.

* **the pay bucket**: ``PAYNB_BUCKET_URL`` (prod: ``gs://<FTP_POLLER_BUCKET_NAME>``, since 2025-08, sbc-pay
  commit d72604f38). Without it, the older ``PAYNB_BUCKET`` / ``FTP_POLLER_BUCKET_NAME`` names an S3/MinIO
  bucket (``s3://<name>``), as before.
* **the legacy store**: the pre-2025-08 MinIO store, whose buckets (``cgi-ejv``, ``payment-sftp``) hold the
  older files. ``PAYNB_LEGACY_BUCKET_URL`` is the URL the bucket name is appended to: ``s3://`` (MinIO at
  ``PAYNB_S3_ENDPOINT`` / ``MINIO_ENDPOINT``) or e.g. ``file:///srv/minio-export/``. Without it, an
  S3 endpoint alone still means ``s3://`` (the ``MINIO_*`` settings keep working).

See docs/storage.md.
"""

from __future__ import annotations

from paynb.errors import ConfigError, StoreError
from paynb.settings import Settings
from paynb.store.base import Store, open_store

PAY_BUCKET_SETTING = "PAYNB_BUCKET_URL"
LEGACY_SETTING = "PAYNB_LEGACY_BUCKET_URL"


def pay_bucket_url(settings: Settings) -> str | None:
    """The pay bucket's URL, or None when neither PAYNB_BUCKET_URL nor PAYNB_BUCKET is set."""
    if settings.bucket_url:
        return settings.bucket_url
    if settings.bucket:
        return f"s3://{settings.bucket}"
    return None


def pay_bucket_setting(settings: Settings) -> str:
    """The name of the setting the pay bucket came from (for messages)."""
    if settings.bucket_url:
        return PAY_BUCKET_SETTING
    return settings.sources.get("PAYNB_BUCKET", "PAYNB_BUCKET")


def pay_bucket(settings: Settings) -> Store:
    """The pay bucket as a store. Raises ConfigError when none is set, StoreError (naming the setting)
    when it cannot be opened."""
    url = pay_bucket_url(settings)
    if url is None:
        raise ConfigError(
            "no pay bucket is configured",
            hint=f"set {PAY_BUCKET_SETTING} (prod: gs://<FTP_POLLER_BUCKET_NAME>) or PAYNB_BUCKET, "
            "or start the sandbox: `paynb sandbox up`",
        )
    return _open(url, settings, pay_bucket_setting(settings))


def legacy_root(settings: Settings) -> str | None:
    """The URL the legacy bucket names are appended to, or None when no legacy store is configured."""
    if settings.legacy_bucket_url:
        root = settings.legacy_bucket_url
        return root if root.endswith(("/", "://")) else root + "/"
    if settings.s3_endpoint:
        return "s3://"
    return None


def legacy_bucket(settings: Settings, name: str) -> Store | None:
    """The legacy MinIO bucket ``name`` (``cgi-ejv``, ``payment-sftp``), or None when there is none."""
    root = legacy_root(settings)
    if root is None or not name:
        return None
    return _open(root + name, settings, LEGACY_SETTING if settings.legacy_bucket_url else "PAYNB_S3_ENDPOINT")


def _open(url: str, settings: Settings, setting: str) -> Store:
    try:
        return open_store(url, settings)
    except StoreError as err:
        first, _, rest = str(err).partition("\n")
        raise StoreError(f"{setting}: {first}", hint=err.hint) from None

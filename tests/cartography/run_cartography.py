"""Runs Cartography's command line against the Scaleway simulator at $SCW_API_URL.

Cartography builds `scaleway.Client(access_key=..., secret_key=...)` with the SDK's
default API URL (https://api.scaleway.com), and Object Storage clients with boto3 at
`https://s3.{region}.scw.cloud`, with no way to change either. For the side-by-side
benchmark (`cargo xtask bench cartography`), this launcher gives every Scaleway client the
simulator's URL as its default and every Scaleway S3 client the simulator's `/s3/{region}`
(path-style), and changes nothing else. Arguments are Cartography's.
"""

import os
import sys

import boto3
import botocore.config
import scaleway_core.client

API = os.environ["SCW_API_URL"]
_init = scaleway_core.client.Client.__init__


def _init_with_simulator(self, *args, **kwargs):
    kwargs.setdefault("api_url", API)
    _init(self, *args, **kwargs)


scaleway_core.client.Client.__init__ = _init_with_simulator

_client = boto3.client


def _client_with_simulator(service, *args, **kwargs):
    url = kwargs.get("endpoint_url") or ""
    if url.startswith("https://s3.") and url.endswith(".scw.cloud"):
        region = url[len("https://s3.") : -len(".scw.cloud")]
        kwargs["endpoint_url"] = f"{API}/s3/{region}"
        kwargs["config"] = botocore.config.Config(s3={"addressing_style": "path"})
    return _client(service, *args, **kwargs)


boto3.client = _client_with_simulator

from cartography.cli import main  # noqa: E402  (after the patches, on purpose)

sys.exit(main(sys.argv[1:]))

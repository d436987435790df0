"""What the client does itself so that a short command need not import a
stdlib module for it must give what that module gives: the URL's parts as
urlsplit, paths quoted as urllib.parse.quote, hosts as the idna codec."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

import pytest

from worker.client.api import _quote
from worker.client.http11 import _ascii_name
from worker.client.transport import server_address
from worker.errors import UsageError

URLS = [
    "https://127.0.0.1:8443",
    "https://localhost:8443/",
    "https://Worker.Example.COM:443/api/v1/",
    "https://h",
    "https://h:0",
    "https://h:0080/a_b~c",
    "https://h:65535",
    "https://[::1]:8443",
    "https://h:8443/p?q=1#f",
    "https://user:pw@h:1",
    "HTTPS://h:1",
    " https://h:1",
    "https://h:1/a b",
    "https://xn--bcher-kva.example:1",
    "https://bücher.example:1",
]


@pytest.mark.parametrize("url", URLS)
def test_a_url_is_split_as_urlsplit_splits_it(url: str) -> None:
    parts = urlsplit(url)
    assert server_address(url) == (parts.hostname, parts.port or 443, parts.path.rstrip("/"))


@pytest.mark.parametrize(
    "url",
    ["http://h:1", "https://", "https://:1", "ftp://h", "h:1", "https://h:99999", "https://h:x"],
)
def test_a_bad_url_is_refused_as_before(url: str) -> None:
    with pytest.raises(UsageError):
        server_address(url)


@pytest.mark.parametrize(
    "text", ["12", "build", "a.b-c_d~e", "", "a/b", "a b", "x?y", "é", "%41", "c=1&d", "KILL"]
)
def test_a_path_part_is_quoted_as_urllib_quotes_it(text: str) -> None:
    assert _quote(text) == quote(text, safe="")


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "localhost", "::1", "a.example.", "Mixed.Case", "x" * 63 + ".y"]
)
def test_an_ascii_host_is_the_bytes_the_idna_codec_gives(host: str) -> None:
    assert _ascii_name(host) == host.encode("idna")


@pytest.mark.parametrize("host", ["a..b", "x" * 64, "x" * 64 + ".y", ".a", "bücher.example"])
def test_other_hosts_are_left_to_the_idna_codec(host: str) -> None:
    assert _ascii_name(host) == host

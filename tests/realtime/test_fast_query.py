"""The fast path's query parsing gives exactly what ``dict(parse_qsl(..., keep_blank_values=True))`` gives."""

from urllib.parse import parse_qsl

import pytest

from service.api.fast import _query

QUERIES = [
    b"auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0"
    b"&body_md5=ec365a775a4cd0599faeb73354201b6f&auth_signature=da45",
    b"", b"&", b"a", b"a=", b"=b", b"a=b=c", b"a=1&a=2", b"a=1&&b=2&", b"AUTH_KEY=x&auth_key=y",
    b"a=%41%42&b=x+y", b"a+b=c", b"a=%zz", b"a=%C3%A9", b"a=\xe9", b"a=1;b=2",
]


@pytest.mark.parametrize("query", QUERIES)
def test_query_matches_parse_qsl(query):
    assert _query(query) == dict(parse_qsl(query.decode("latin-1"), keep_blank_values=True))

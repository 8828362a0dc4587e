"""Signature test vectors from the Pusher docs (pusher-protocol.md §4 and §6.2)."""

from service.realtime import signatures

KEY, SECRET = "278d425bdf160c739803", "7ad3773142a6692b25b8"


def test_private_channel_vector():
    message = signatures.channel_auth_message("1234.1234", "private-foobar", None)
    assert signatures.sign(SECRET, message) == "58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"


def test_presence_channel_vector_signs_channel_data_byte_for_byte():
    data = '{"user_id":10,"user_info":{"name":"Mr. Channels"}}'
    message = signatures.channel_auth_message("1234.1234", "presence-foobar", data)
    assert signatures.sign(SECRET, message) == "31935e7d86dba64c2a90aed31fdc61869f9b22ba9d8863bba239c03ca481bc80"
    # Re-serialising with other spacing must not verify: the server signs what it received.
    respaced = '{"user_id": 10, "user_info": {"name": "Mr. Channels"}}'
    assert not signatures.check_token(KEY, [SECRET], f"{KEY}:{signatures.sign(SECRET, message)}",
                                      signatures.channel_auth_message("1234.1234", "presence-foobar", respaced))


def test_user_authentication_vector():
    message = signatures.user_auth_message("1234.1234", '{"id":"12345"}')
    assert signatures.sign(SECRET, message) == "4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba"


def test_http_request_vector():
    body = b'{"name":"foo","channels":["project-3"],"data":"{\\"some\\":\\"data\\"}"}'
    assert signatures.body_md5(body) == "ec365a775a4cd0599faeb73354201b6f"
    params = {"auth_key": KEY, "auth_timestamp": "1353088179", "auth_version": "1.0",
              "body_md5": "ec365a775a4cd0599faeb73354201b6f", "auth_signature": "ignored"}
    to_sign = signatures.request_string_to_sign("POST", "/apps/3/events", params)
    assert to_sign == ("POST\n/apps/3/events\nauth_key=278d425bdf160c739803&auth_timestamp=1353088179"
                       "&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f")
    assert signatures.sign(SECRET, to_sign) == "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"


def test_token_needs_the_right_key_and_any_valid_secret():
    message = "1.1:private-x"
    token = f"{KEY}:{signatures.sign('old-secret', message)}"
    assert signatures.check_token(KEY, ["new-secret", "old-secret"], token, message)
    assert not signatures.check_token(KEY, ["new-secret"], token, message)
    assert not signatures.check_token("other-key", ["old-secret"], token, message)
    assert not signatures.check_token(KEY, ["old-secret"], "no-colon", message)
    assert not signatures.check_token(KEY, ["old-secret"], None, message)

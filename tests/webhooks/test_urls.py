"""The SSRF guard on callback and subscription URLs."""
import pytest

from webhooks.urls import UnsafeUrl, Unresolvable, check_destination, check_form, check_pattern


@pytest.mark.parametrize("url", ["https://hooks.example.com/x", "http://93.184.216.34:8080/hook?a=1",
                                 "https://[2606:4700:4700::1111]/hook"])
def test_public_http_urls_pass(url):
    check_form(url)
    if "example.com" not in url:  # literals need no DNS
        check_destination(url, allow_private=False)


@pytest.mark.parametrize("url, reason", [
    ("ftp://example.com/", "only http and https"),
    ("file:///etc/passwd", "only http and https"),
    ("http://user:pw@example.com/", "credentials"),
    ("http:///path", "no host"),
    ("http://example.com:99999/", "not a valid URL"),
    ("http://example.com:0/", "port 0"),
    ("http://" + "a" * 2048, "longer than"),
])
def test_malformed_urls_are_refused(url, reason):
    with pytest.raises(UnsafeUrl, match=reason):
        check_form(url)


INTERNAL = ["127.0.0.1", "localhost", "10.0.0.8", "172.16.5.4", "192.168.1.1", "169.254.169.254", "100.64.0.1",
            "0.0.0.0", "[::1]", "[fd00::1]", "[fe80::1]", "[::ffff:127.0.0.1]", "224.0.0.1"]  # noqa: S104 - refused


@pytest.mark.parametrize("host", INTERNAL)
def test_internal_addresses_are_refused_unless_allowed(host):
    url = f"http://{host}:8080/hook"
    with pytest.raises(UnsafeUrl, match="not a public address"):
        check_destination(url, allow_private=False)
    check_destination(url, allow_private=True)


def test_a_name_that_does_not_resolve_is_refused_as_unresolvable():
    with pytest.raises(Unresolvable):
        check_destination("http://no-such-host.invalid/hook", allow_private=False)


@pytest.mark.parametrize("url", ["http://a", "https://hooks.example.com./x/y?q=1&r=a%2Fb#frag", "http://0",
                                 "http://127.0.0.1:65535/", "http://host:1", "https://[2606:4700::1111]:443/hook",
                                 "http://[::ffff:192.168.0.1]/hook", "http://[::]/", "http://a/@:!$&'()*+,;=~"])
def test_what_the_documented_pattern_admits_passes_the_form_check(url):
    check_pattern(url)
    check_form(url)


@pytest.mark.parametrize("url", ["0", "ftp://a/", "http://", "http://a:0/", "http://a:65536/", "http://u@a/",
                                 "http://a/ b", "http://a/%zz", "http://[::g]/", "http://[1:2]/", "http://a/\n",
                                 "http://a\n", "http://a_b/", "http://a/é"])
def test_the_documented_pattern_refuses_the_rest(url):
    with pytest.raises(UnsafeUrl, match="not an http"):
        check_pattern(url)

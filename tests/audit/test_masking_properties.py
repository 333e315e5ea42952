"""``mask_secrets`` over any JSON value (hypothesis): what it must hide and keep.

The admin masks every JSON column a Viewer sees with it, fifty rows a page, so it has
fast paths for the types JSON holds; these properties hold for any value built from
those types: a value with nothing secret comes back equal, and a planted secret (a key
that names one, a URL password, a bearer token) never comes back.
"""

from hypothesis import given
from hypothesis import strategies as st

from audit.services import MASK, mask_secrets

# Words without a secret's name in them: no vowel "a" or "e" (so no "pass", "token",
# "key", "secret", "salt"...), no "@" or "://", no "bearer".
PLAIN = st.text(alphabet="bcdfghijlmnoqruvwxyz0123456789 _-", max_size=12)
LEAVES = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | PLAIN
JSON = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(PLAIN, inner, max_size=4),
    max_leaves=20,
)


@given(JSON)
def test_nothing_secret_comes_back_equal(value):
    assert mask_secrets(value, max_text=None) == value


#: (key, value, the part of the value that must never come back)
SECRETS = st.sampled_from(
    [
        ("password", "hunter2-{n}", "hunter2-{n}"),
        ("apiKey", "sk-live-{n}", "sk-live-{n}"),
        ("url", "postgres://app:pw-{n}@db.internal/portal", "pw-{n}"),
        ("header", "Bearer tok-{n}", "tok-{n}"),
    ]
)


@given(JSON, SECRETS, st.integers(min_value=1000, max_value=9999), st.integers(0, 3))
def test_a_planted_secret_never_comes_back(value, secret, n, depth):
    key, template, part = secret
    planted = {key: template.format(n=n)}
    for _ in range(depth):
        planted = {"nested": [value, planted]}
    masked = repr(mask_secrets(planted, max_text=None))
    assert part.format(n=n) not in masked
    assert MASK in masked

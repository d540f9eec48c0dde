"""API keys as tenants, through real HTTP on a loopback port: a session id is
each key's own, and a prompt prefix one key computed serves another key only
with kv_share_across_keys (cached_tokens would tell what the other sent)."""
import unittest

from llamad_server import Server

STORY = "Once upon a time"
KEYS = ("key-alice", "key-bob")


def auth(key):
    return {"Authorization": "Bearer " + key}


def cached(server, key, prompt, session=None, max_tokens=8):
    body = {"prompt": prompt, "max_tokens": max_tokens, "temperature": 0}
    if session:
        body["session_id"] = session
    st, _, res = server.post("/v1/completions", body, auth(key))
    assert st == 200, res
    return res["usage"]["prompt_tokens_details"]["cached_tokens"], res


class Shared:
    apart = None   # keys, the default: nothing shared
    sharing = None  # keys and kv_share_across_keys


def setUpModule():
    keys = [a for k in KEYS for a in ("--api-key", k)]
    Shared.apart = Server(*keys).__enter__()
    Shared.sharing = Server(*keys, "--kv-share-across-keys").__enter__()


def tearDownModule():
    Shared.apart.__exit__(None, None, None)
    Shared.sharing.__exit__(None, None, None)


def first_turn(server, session):
    """Alice's first turn of session; returns the second turn's prompt and how
    many of its tokens her session holds."""
    n, res = cached(server, KEYS[0], STORY, session, max_tokens=20)
    assert n == 0
    prompt = STORY + res["choices"][0]["text"] + " Then the sun came out."
    return prompt, res["usage"]["prompt_tokens"] + 20 - 1


class TenantTest(unittest.TestCase):
    def test_session_is_the_keys_own(self):
        s = Shared.apart
        prompt, held = first_turn(s, "chat-1")
        # Bob naming Alice's session gets a fresh one: nothing of hers.
        self.assertEqual(cached(s, KEYS[1], prompt, "chat-1")[0], 0)
        # Alice's is still there, untouched by Bob's parking his.
        n, res = cached(s, KEYS[0], prompt, "chat-1")
        self.assertEqual(n, held)
        # And the same key's next turn takes all but the last prompt token.
        self.assertEqual(cached(s, KEYS[0], prompt, "chat-1")[0],
                         res["usage"]["prompt_tokens"] - 1)

    def test_prefixes_stay_within_a_key(self):
        s = Shared.apart
        system = ("Lily and Tom went to the park. They saw a big red ball under a tree "
                  "and a dog that ran after it. ")
        cached(s, KEYS[0], system + "One day")
        self.assertEqual(cached(s, KEYS[1], system + "The sun")[0], 0)
        n = cached(s, KEYS[0], system + "The bird")[0]
        self.assertGreaterEqual(n, 32)

    def test_sharing_prefixes_across_keys(self):
        s = Shared.sharing
        system = ("A little cat lived in a small house by the sea. Every morning it sat "
                  "at the window and looked at the boats. ")
        cached(s, KEYS[0], system + "One day")
        n = cached(s, KEYS[1], system + "The sun")[0]
        self.assertGreaterEqual(n, 32)
        self.assertEqual(n % 16, 0)  # whole blocks of 16 positions
        # Sessions are still each key's own: Bob gets Alice's whole blocks as a
        # shared prefix, not her session's last partial block.
        prompt, held = first_turn(s, "chat-2")
        n = cached(s, KEYS[1], prompt, "chat-2")[0]
        self.assertEqual(n, held - held % 16)
        self.assertLess(n, held)


if __name__ == "__main__":
    unittest.main()

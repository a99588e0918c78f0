"""docs/configuration.md's reference, the example config and the parser name
exactly the same keys; README's config example is valid."""

import os
import re
import subprocess
import tempfile
import unittest

import redvip_testlib as lib


def keys_of_toml(text):
    """section.key for each `key = value` line, [[peer]] keys as peer[].key."""
    keys, section = set(), None
    for line in text.splitlines():
        line = line.strip()
        header = re.match(r"^\[\[?([a-z_]+)\]\]?", line)
        if header:
            section = header.group(1) + ("[]" if line.startswith("[[") else "")
            continue
        key = re.match(r"^([a-z_]+)\s*=", line)
        if key and section:
            keys.add(f"{section}.{key.group(1)}")
    return keys


class Reference(unittest.TestCase):
    def test_readme_example_and_parser_agree(self):
        with open(os.path.join(lib.SOURCE_DIR, "docs", "configuration.md")) as f:
            readme = f.read()
        table = readme.split("## Configuration reference", 1)[1].split("\n\n| key |", 1)[1]
        documented = set(re.findall(r"^\| `([a-z_\[\]]+\.[a-z_]+)` \|", "| key |" + table, re.M))
        example = os.path.join(lib.SOURCE_DIR, "conf", "redvip.example.toml")
        with open(example) as f:
            in_example = keys_of_toml(f.read())
        # --check-config prints every key the parser accepts, defaults filled in.
        printed = subprocess.run([lib.REDVIP_BIN, "--check-config", example], capture_output=True, text=True,
                                 check=True).stdout
        accepted = keys_of_toml(printed)
        self.assertGreater(len(accepted), 30)
        self.assertEqual(documented, accepted, "docs/configuration.md reference vs parser")
        self.assertEqual(in_example, accepted, "example config vs parser")

    def test_readme_snippet_is_a_valid_config(self):
        with open(os.path.join(lib.SOURCE_DIR, "README.md")) as f:
            snippets = re.findall(r"```toml\n(.*?)```", f.read(), re.S)
        self.assertEqual(len(snippets), 1, "README's one config example")
        with tempfile.NamedTemporaryFile("w", suffix=".toml") as f:
            f.write(snippets[0])
            f.flush()
            r = subprocess.run([lib.REDVIP_BIN, "--check-config", f.name], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    unittest.main()

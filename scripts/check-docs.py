#!/usr/bin/env python3
"""Fails when a relative link in the README or docs/ names a file, or a
heading anchor, that does not exist: every guide must stay reachable from the
README, and a moved section must not leave dead links behind."""
import glob, os, re, sys

def anchors(path):
    heads = re.findall(r"(?m)^#+ (.*)$", open(path, encoding="utf-8").read())
    return {re.sub(r"[^a-z0-9 _-]", "", h.lower()).strip().replace(" ", "-") for h in heads}

bad = []
files = ["README.md"] + sorted(glob.glob("docs/*.md")) + sorted(glob.glob("examples/**/*.md", recursive=True))
for md in files:
    text = open(md, encoding="utf-8").read()
    for m in re.finditer(r"\]\(([^)\s]+)\)", text):
        link = m.group(1)
        if re.match(r"[a-z]+:", link):
            continue
        path, _, anchor = link.partition("#")
        target = md if path == "" else os.path.normpath(os.path.join(os.path.dirname(md), path))
        if not os.path.exists(target):
            bad.append(f"{md}: {link}: no such file")
        elif anchor and target.endswith(".md") and anchor not in anchors(target):
            bad.append(f"{md}: {link}: no such heading")
# Every guide in docs/ is linked from the README.
readme = open("README.md", encoding="utf-8").read()
for page in sorted(glob.glob("docs/*.md")):
    if page not in readme:
        bad.append(f"README.md does not link {page}")
for b in bad:
    print(b, file=sys.stderr)
sys.exit(1 if bad else 0)

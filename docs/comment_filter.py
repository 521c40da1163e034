#!/usr/bin/env python3
"""Doxygen input filter for gev's public headers.

The headers are written for people first: plain C comments, each before the
declaration it describes, field and enum comments after their member. This
filter shows Doxygen the same text as documentation, so the reference is
generated from the headers exactly as they read:

  - the file's opening comment becomes the file's documentation (@file);
  - a comment that opens a line becomes a doc comment of what follows;
  - a comment after code on the same line documents that member (/**<);
  - section rules ("/* ---- Waiting ---- */") stay plain comments;
  - inside doc comments, '<' '>' '&' '\\' '@' '#' are escaped outside
    double quotes, since the prose uses them as ordinary characters
    (<name>, ->, #include); Doxygen takes quoted text literally already.
"""
import re
import sys

SPECIAL = re.compile(r"([<>&\\@#$])")


def escape(text):
    # Doxygen takes text between double quotes literally: leave it as is.
    parts = text.split('"')
    for k in range(0, len(parts), 2):
        parts[k] = SPECIAL.sub(r"\\\1", parts[k])
    return '"'.join(parts)


def convert(src):
    out = []
    i = 0
    first = True
    n = len(src)
    while i < n:
        start = src.find("/*", i)
        if start < 0:
            out.append(src[i:])
            break
        end = src.find("*/", start + 2)
        if end < 0:
            out.append(src[i:])
            break
        before = src[i:start]
        body = src[start + 2:end]
        out.append(before)
        line_start = src.rfind("\n", 0, start) + 1
        leading = src[line_start:start]
        inline = leading.strip() != ""
        rule = body.strip().startswith("----")
        if body.startswith("*") or body.startswith("!") or rule:
            out.append(src[start:end + 2])
        elif first and not inline:
            out.append("/**" + escape(body) + "@file */")
        elif inline:
            out.append("/**<" + escape(body) + "*/")
        else:
            out.append("/**" + escape(body) + "*/")
        first = False
        i = end + 2
    return "".join(out)


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as f:
        sys.stdout.write(convert(f.read()))

#!/usr/bin/env python3
"""Generates inference/unicode_data.cpp: the code point flag table the pre-tokenizers use.

Usage (from the repository root):
    python3 tools/gen_unicode_data.py > inference/unicode_data.cpp

The table is a sorted list of (first code point, flags) ranges covering U+0000..U+10FFFF; a range ends where the next
one starts. Flags follow llama.cpp's scripts/gen-unicode-data.py so that our splitters agree with its regexes:
one general-category bit (\\p{N}, \\p{L}, \\p{Z}, \\p{M}, \\p{P}, \\p{S}, \\p{C}, or "undefined" for Cn) plus a
whitespace bit for the Unicode White_Space property, which is what llama.cpp (and its regexes' \\s) call whitespace.

The category data comes from Python's unicodedata module, so the Unicode version is the one of the Python that runs
this script (printed into the generated file).
"""

import sys
import unicodedata

MAX_CODEPOINTS = 0x110000

# Must match spark::unicode::cpt_flag in inference/unicode.h.
FLAG_UNDEFINED = 0x0001    # Cn (unassigned; also noncharacters)
FLAG_NUMBER = 0x0002       # \p{N}
FLAG_LETTER = 0x0004       # \p{L}
FLAG_SEPARATOR = 0x0008    # \p{Z}
FLAG_MARK = 0x0010         # \p{M}
FLAG_PUNCTUATION = 0x0020  # \p{P}
FLAG_SYMBOL = 0x0040       # \p{S}
FLAG_CONTROL = 0x0080      # \p{C} other than Cn
FLAG_WHITESPACE = 0x0100   # White_Space property

CATEGORY_TO_FLAG = {
    "Cn": FLAG_UNDEFINED,
    "Cc": FLAG_CONTROL, "Cf": FLAG_CONTROL, "Co": FLAG_CONTROL, "Cs": FLAG_CONTROL,
    "Ll": FLAG_LETTER, "Lm": FLAG_LETTER, "Lo": FLAG_LETTER, "Lt": FLAG_LETTER, "Lu": FLAG_LETTER,
    "Mc": FLAG_MARK, "Me": FLAG_MARK, "Mn": FLAG_MARK,
    "Nd": FLAG_NUMBER, "Nl": FLAG_NUMBER, "No": FLAG_NUMBER,
    "Pc": FLAG_PUNCTUATION, "Pd": FLAG_PUNCTUATION, "Pe": FLAG_PUNCTUATION, "Pf": FLAG_PUNCTUATION,
    "Pi": FLAG_PUNCTUATION, "Po": FLAG_PUNCTUATION, "Ps": FLAG_PUNCTUATION,
    "Sc": FLAG_SYMBOL, "Sk": FLAG_SYMBOL, "Sm": FLAG_SYMBOL, "So": FLAG_SYMBOL,
    "Zl": FLAG_SEPARATOR, "Zp": FLAG_SEPARATOR, "Zs": FLAG_SEPARATOR,
}

# The White_Space property (PropList.txt); unicodedata does not expose it. It has been stable since Unicode 6.
WHITESPACE = (list(range(0x0009, 0x000D + 1)) + [0x0020, 0x0085, 0x00A0, 0x1680] + list(range(0x2000, 0x200A + 1))
              + [0x2028, 0x2029, 0x202F, 0x205F, 0x3000])


def check_whitespace():
    # str.isspace() is White_Space plus the ASCII separators U+001C..U+001F (bidi class B/S); cross-check the list.
    from_python = {c for c in range(MAX_CODEPOINTS) if chr(c).isspace()} - set(range(0x1C, 0x20))
    if from_python != set(WHITESPACE):
        raise SystemExit("White_Space list disagrees with str.isspace(): %s" % sorted(from_python ^ set(WHITESPACE)))


def main():
    check_whitespace()
    whitespace = set(WHITESPACE)

    ranges = []  # (first code point, flags)
    for cpt in range(MAX_CODEPOINTS):
        flags = CATEGORY_TO_FLAG[unicodedata.category(chr(cpt))]
        if cpt in whitespace:
            flags |= FLAG_WHITESPACE
        if not ranges or ranges[-1][1] != flags:
            ranges.append((cpt, flags))

    out = sys.stdout
    out.write("// GENERATED FILE - do not edit. Produced by tools/gen_unicode_data.py from the unicodedata module of\n")
    out.write("// Python %s (Unicode %s): %d ranges of code point flags (see inference/unicode.h).\n"
              % (sys.version.split()[0], unicodedata.unidata_version, len(ranges)))
    out.write('#include "inference/unicode.h"\n\n')
    out.write("namespace spark::unicode::detail {\n\n")
    out.write('extern const char k_unicode_version[] = "%s";\n\n' % unicodedata.unidata_version)
    out.write("// {first code point, flags}; a range ends where the next begins, the last one at U+10FFFF.\n")
    out.write("extern const flag_range k_flag_ranges[] = {\n")
    line = "   "
    for first, flags in ranges:
        item = " {0x%X, 0x%X}," % (first, flags)
        if len(line) + len(item) > 118:
            out.write(line + "\n")
            line = "   "
        line += item
    out.write(line + "\n};\n\n")
    out.write("extern const size_t k_n_flag_ranges = sizeof(k_flag_ranges) / sizeof(k_flag_ranges[0]);\n\n")
    out.write("}  // namespace spark::unicode::detail\n")


if __name__ == "__main__":
    main()

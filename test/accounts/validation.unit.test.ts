// Input rules with messages a person can act on: what they normalize, what they refuse and why.
import { describe, expect, test } from "vitest";
import * as z from "zod/mini";
import {
  bioRule,
  captionRule,
  commentRule,
  deceptiveText,
  displayNameRule,
  emailRule,
  handleRule,
  LIMITS,
  passwordRule,
  searchPrefixRule,
} from "../../src/domain/validation.ts";

/** The rule's verdict: the value it stores, or the messages it gives. */
const check = (rule: z.ZodMiniType, value: unknown) => {
  const result = z.safeParse(rule, value);
  return result.success ? { value: result.data } : { errors: result.error.issues.map((issue) => issue.message) };
};

describe("handles", () => {
  test("are typed as seen: a leading @, capitals and spaces around are forgiven", () => {
    expect(check(handleRule, "  @Velvet_Tram ")).toEqual({ value: "velvet_tram" });
    expect(check(searchPrefixRule, "@VEL")).toEqual({ value: "vel" });
  });

  test.each(["ab", "a".repeat(31), "with space", "dash-ed", "émile"])("refuse %j, saying what a handle is", (value) => {
    expect(check(handleRule, value)).toEqual({
      errors: ["A handle is 3 to 30 characters: letters, digits, underscores and dots."],
    });
  });

  test("a search prefix is 1 to 30 characters", () => {
    expect(check(searchPrefixRule, " @ ")).toEqual({ errors: ["Type at least one character to search."] });
    expect(check(searchPrefixRule, "a".repeat(31))).toEqual({ errors: ["Search for at most 30 characters."] });
  });
});

describe("texts people read", () => {
  test("are stored in one spelling (NFC), trimmed", () => {
    // "é" typed as e + combining acute is stored as the single character.
    expect(check(displayNameRule, "  Ame\u0301lie ")).toEqual({ value: "Am\u00e9lie" });
    expect(check(commentRule, " nice!\n\nreally ")).toEqual({ value: "nice!\n\nreally" });
  });

  test("limits are counted after trimming, with the limit in the message", () => {
    expect(check(captionRule, `${"x".repeat(LIMITS.caption.max)}   `)).toEqual({ value: "x".repeat(2200) });
    expect(check(captionRule, "x".repeat(2201))).toEqual({ errors: ["A caption can be at most 2200 characters."] });
    expect(check(commentRule, "   ")).toEqual({ errors: ["A comment can't be empty."] });
    expect(check(bioRule, "x".repeat(161))).toEqual({ errors: ["Your bio can be at most 160 characters."] });
    expect(check(displayNameRule, "")).toEqual({ errors: ["Your name can't be empty."] });
  });

  test("refuse what renders as something else, and say why", () => {
    // A right-to-left override makes "gnp.exe" read as "exe.png".
    expect(check(displayNameRule, "Bob\u202Egnp.exe")).toEqual({
      errors: ["Text can't contain invisible formatting characters (such as direction overrides)."],
    });
    expect(check(displayNameRule, "Bo\u200Bb")).toMatchObject({ errors: [expect.stringContaining("invisible")] });
    expect(check(displayNameRule, "Bob ✔")).toEqual({
      errors: ["A name can't contain check marks: they look like a verified badge."],
    });
    expect(check(commentRule, "ok\u0000")).toEqual({ errors: ["Text can't contain control characters."] });
    // Four marks on a letter NFC cannot compose with any of them (Z + acute would become Ź, leaving three).
    expect(check(commentRule, "x\u0301\u0302\u0303\u0304")).toEqual({
      errors: ["Text can't stack that many accents on one letter."],
    });
  });

  test("keep what scripts and emoji need: line breaks in long texts, joiners, flags, a few accents", () => {
    expect(deceptiveText("line\nbreak\ttab", { multiline: true })).toBeNull();
    expect(deceptiveText("line\nbreak")).toBe("Text can't contain control characters.");
    expect(deceptiveText("👩\u200D💻 می\u200Cخواهم")).toBeNull();
    // England's flag: a black flag and tag characters.
    expect(deceptiveText("🏴\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}")).toBeNull();
    expect(deceptiveText("Ti\u1EBFng Vi\u1EC7t a\u0323\u0302")).toBeNull();
    // Check marks are only a problem in names.
    expect(deceptiveText("done ✔")).toBeNull();
  });
});

describe("sign-up details", () => {
  test("emails are trimmed and lowercased; a non-address is refused", () => {
    expect(check(emailRule, " Ann@Example.COM ")).toEqual({ value: "ann@example.com" });
    expect(check(emailRule, "ann at example")).toEqual({ errors: ["That doesn't look like an email address."] });
  });

  test("passwords are 8 to 128 characters, kept exactly as typed", () => {
    expect(check(passwordRule, " spaces count ")).toEqual({ value: " spaces count " });
    expect(check(passwordRule, "short")).toEqual({ errors: ["Use at least 8 characters for your password."] });
    expect(check(passwordRule, "x".repeat(129))).toEqual({ errors: ["A password can be at most 128 characters."] });
  });
});

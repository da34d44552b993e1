import * as z from "zod/mini";
import { MAX_OPS_SOURCES } from "../platform/config.ts";

// Input rules with messages a person can act on. The database enforces the hard ones (handle format,
// counters) too, so no code path can store what these reject.

export const LIMITS = {
  handle: { min: 3, max: 30 },
  displayName: { max: 50 },
  bio: { max: 160 },
  password: { min: 8, max: 128 },
  caption: { max: 2200 },
  comment: { max: 1000 },
  photos: { min: 1, max: 10 },
  /** Ids in one `nodes(ids:)` or `markNotificationsRead(ids:)`. */
  nodeIds: { max: 100 },
  notificationIds: { max: 100 },
  /** Operations sources (OPS_WEBHOOK_SECRETS), and so subscriptions to them. */
  sources: { max: MAX_OPS_SOURCES },
  searchPrefix: { max: 30 },
} as const;

/**
 * Characters that make text render as something else: control characters (but line breaks and tabs where
 * text has lines), and invisible formatting characters — bidirectional overrides and isolates that reorder
 * what follows (a name that reads as someone else's), zero-width spaces, byte-order marks. The joiners that
 * emoji and Persian or Indic scripts need (U+200C, U+200D) and the tags of flag emoji stay allowed.
 */
const CONTROL = /[\p{Cc}]/u;
const FORMAT = /[\p{Cf}]/u;
const ALLOWED_FORMAT = /^(?:\u200C|\u200D|[\u{E0020}-\u{E007F}])$/u;
/** Check marks: in a name they pose as the app's own "verified" badge. */
const CHECK_MARKS = /[\u2611\u2705\u2713\u2714\u{1F5F8}]/u;
/** More combining marks in a row than any script needs: text that spills over what is around it. */
const STACKED_MARKS = /\p{M}{4,}/u;

/** Why a text would deceive its readers, or null. */
export function deceptiveText(text: string, options: { multiline?: boolean; name?: boolean } = {}): string | null {
  for (const char of text) {
    if (CONTROL.test(char) && !(options.multiline && (char === "\n" || char === "\t" || char === "\r"))) {
      return "Text can't contain control characters.";
    }
    if (FORMAT.test(char) && !ALLOWED_FORMAT.test(char)) {
      return "Text can't contain invisible formatting characters (such as direction overrides).";
    }
  }
  if (STACKED_MARKS.test(text)) return "Text can't stack that many accents on one letter.";
  if (options.name && CHECK_MARKS.test(text))
    return "A name can't contain check marks: they look like a verified badge.";
  return null;
}

/** A zod check refusing deceptive text, with the reason as its message. */
const honest = (options: { multiline?: boolean; name?: boolean } = {}) =>
  z.superRefine((value: string, context) => {
    const problem = deceptiveText(value, options);
    if (problem) context.addIssue({ code: "custom", message: problem, input: value });
  });

/** Removes a leading "@" and lowercases: people type handles as they see them. */
const asHandle = z.pipe(
  z.string().check(z.trim()),
  z.transform((v) => v.replace(/^@/, "").toLowerCase()),
);

export const handleRule = z.pipe(
  asHandle,
  z
    .string()
    .check(
      z.regex(
        /^[a-z0-9_.]{3,30}$/,
        `A handle is ${LIMITS.handle.min} to ${LIMITS.handle.max} characters: letters, digits, underscores and dots.`,
      ),
    ),
);

/** One spelling of each text (NFC), trimmed: what looks the same is stored the same. */
const normalized = z.overwrite((value: string) => value.normalize("NFC").trim());

export const displayNameRule = z
  .string()
  .check(
    normalized,
    z.minLength(1, "Your name can't be empty."),
    z.maxLength(LIMITS.displayName.max, `Your name can be at most ${LIMITS.displayName.max} characters.`),
    honest({ name: true }),
  );

export const bioRule = z
  .string()
  .check(
    normalized,
    z.maxLength(LIMITS.bio.max, `Your bio can be at most ${LIMITS.bio.max} characters.`),
    honest({ multiline: true }),
  );

export const emailRule = z.pipe(
  z.string().check(z.trim(), z.toLowerCase(), z.maxLength(254, "That email address is too long.")),
  z.email("That doesn't look like an email address."),
);

export const passwordRule = z
  .string()
  .check(
    z.minLength(LIMITS.password.min, `Use at least ${LIMITS.password.min} characters for your password.`),
    z.maxLength(LIMITS.password.max, `A password can be at most ${LIMITS.password.max} characters.`),
  );

export const captionRule = z
  .string()
  .check(
    normalized,
    z.maxLength(LIMITS.caption.max, `A caption can be at most ${LIMITS.caption.max} characters.`),
    honest({ multiline: true }),
  );

export const commentRule = z
  .string()
  .check(
    normalized,
    z.minLength(1, "A comment can't be empty."),
    z.maxLength(LIMITS.comment.max, `A comment can be at most ${LIMITS.comment.max} characters.`),
    honest({ multiline: true }),
  );

export const searchPrefixRule = z.pipe(
  asHandle,
  z
    .string()
    .check(
      z.minLength(1, "Type at least one character to search."),
      z.maxLength(LIMITS.searchPrefix.max, `Search for at most ${LIMITS.searchPrefix.max} characters.`),
    ),
);

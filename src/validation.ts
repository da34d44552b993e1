import * as z from "zod/mini";

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
  searchPrefix: { max: 30 },
} as const;

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

export const displayNameRule = z
  .string()
  .check(
    z.trim(),
    z.minLength(1, "Your name can't be empty."),
    z.maxLength(LIMITS.displayName.max, `Your name can be at most ${LIMITS.displayName.max} characters.`),
  );

export const bioRule = z
  .string()
  .check(z.trim(), z.maxLength(LIMITS.bio.max, `Your bio can be at most ${LIMITS.bio.max} characters.`));

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
  .check(z.trim(), z.maxLength(LIMITS.caption.max, `A caption can be at most ${LIMITS.caption.max} characters.`));

export const commentRule = z
  .string()
  .check(
    z.trim(),
    z.minLength(1, "A comment can't be empty."),
    z.maxLength(LIMITS.comment.max, `A comment can be at most ${LIMITS.comment.max} characters.`),
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

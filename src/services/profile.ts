import type { Viewer } from "../domain/auth.ts";
import { ConflictError } from "../errors.ts";
import type { MediaRecord } from "../loaders/media.ts";
import { omitPrivate, type UserRecord, userEntity } from "../loaders/users.ts";
import { commitChanges } from "../platform/changes.ts";
import { db } from "../platform/db.ts";
import { ownMedia, verifyUpload } from "./media.ts";

export interface ProfileInput {
  displayName?: string | null;
  bio?: string | null;
  /** One of the viewer's avatar uploads (verified now if still PENDING); null removes the avatar. */
  avatarPhotoId?: string | null;
}

/**
 * Changes the viewer's public profile; only the fields given change (validated at the input).
 * @returns the profile as it is now, and the avatar set by this change (if one was).
 * @throws NotFoundError, ForbiddenError, ConflictError, UploadError
 */
export async function updateProfile(
  viewer: Viewer,
  input: ProfileInput,
): Promise<{ user: UserRecord; avatar: MediaRecord | null }> {
  let avatar: MediaRecord | null = null;
  if (input.avatarPhotoId) {
    const media = await ownMedia(viewer, input.avatarPhotoId);
    if (media.purpose !== "AVATAR") throw new ConflictError("That photo was uploaded for a post, not as an avatar.");
    avatar = await verifyUpload(media);
  }
  const user: UserRecord = await db().user.update({
    where: { id: viewer.id },
    omit: omitPrivate,
    data: {
      displayName: input.displayName ?? undefined,
      bio: input.bio ?? undefined,
      avatarId: input.avatarPhotoId === null ? null : (avatar?.id ?? undefined),
    },
  });
  await commitChanges(userEntity.changed(viewer.id, "user"));
  return { user, avatar };
}

import { ConflictError } from "../errors.ts";
import type { PhotoRecord } from "../loaders/photos.ts";
import { omitPrivate, type UserRecord, userEntity } from "../loaders/users.ts";
import { ownPhoto, verifyUpload } from "./uploads.ts";
import { type SignedIn, write } from "./write.ts";

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
  actor: SignedIn,
  input: ProfileInput,
): Promise<{ user: UserRecord; avatar: PhotoRecord | null }> {
  const { viewer } = actor;
  let avatar: PhotoRecord | null = null;
  if (input.avatarPhotoId) {
    const photo = await ownPhoto(viewer, input.avatarPhotoId);
    if (photo.purpose !== "AVATAR") throw new ConflictError("That photo was uploaded for a post, not as an avatar.");
    avatar = await verifyUpload(actor, photo);
  }
  const user = await write(
    actor,
    async ({ tx, changed }): Promise<UserRecord> => {
      changed(userEntity.changed(viewer.id, "user"));
      return tx.user.update({
        where: { id: viewer.id },
        omit: omitPrivate,
        data: {
          displayName: input.displayName ?? undefined,
          bio: input.bio ?? undefined,
          avatarId: input.avatarPhotoId === null ? null : (avatar?.id ?? undefined),
        },
      });
    },
    { singleStatement: true },
  );
  return { user, avatar };
}

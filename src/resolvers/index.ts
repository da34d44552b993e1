// Importing a domain module registers its types and fields on the builder.
import "./scalars.ts";
import "./errors.ts";
import "./users.ts";
import "./photos.ts";
import "./posts.ts";
import "./comments.ts";
import "./likes.ts";
import "./follows.ts";
import "./notifications.ts";
import "./auth.ts";
import "./sources.ts";

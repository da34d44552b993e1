import { type DocumentNode, type ExecutionResult, GraphQLError, getOperationAST, Kind, print } from "graphql";
import type { Plugin } from "graphql-yoga";
import { chargeKeptAnswer } from "../../domain/rate-limit.ts";
import { ErrorCode, RequestErrorCode } from "../../errors.ts";
import {
  awaitAnswer,
  findKey,
  keyId,
  LOST_AFTER_MS,
  NOT_KEPT,
  recordAnswer,
  requestHash,
} from "../../platform/idempotency.ts";
import { logger } from "../../platform/logger.ts";
import { type IssuedTokens, mayRepeatSessionAnswer } from "../../services/auth.ts";
import type { Context } from "../context.ts";

/** The largest answer kept for a repeat (bigger ones are not: see `record`). */
const MAX_KEPT_ANSWER_BYTES = 64 * 1024;

/** Visible ASCII, 1–255 characters: a UUID, a ULID, or whatever the app generates per attempt-group. */
const KEY = /^[\x21-\x7e]{1,255}$/;

const refusal = (code: string, message: string, status: number, retryAfter?: number) =>
  new GraphQLError(message, {
    extensions: {
      code,
      http: { status, headers: retryAfter ? { "Retry-After": String(retryAfter) } : {} },
    },
  });

/** Answers replayed from a key, by request: marked with `Idempotent-Replayed: true`. */
const replayed = new WeakSet<Request>();

/**
 * `Idempotency-Key` on mutations: a repeat of a key (same viewer, same operation and variables) within
 * IDEMPOTENCY_RETENTION_HOURS gets the first answer again, without a second effect, also when the two arrive at
 * once on different instances (the key is claimed by the mutation's own write: services/write.ts).
 * The same key with another operation or other variables is refused (IDEMPOTENCY_KEY_REUSED, 422); a repeat while
 * the first is still running waits for its answer, briefly, then is told to retry (IDEMPOTENCY_KEY_IN_USE, 409).
 * Runs after the gate: replays pass the same limits as anything else.
 */
export function useIdempotency(): Plugin {
  return {
    async onExecute({ args, setResultAndStopExecution }) {
      const context = args.contextValue as unknown as Context;
      const key = context.request.headers.get("idempotency-key");
      if (key === null || getOperationAST(args.document, args.operationName)?.operation !== "mutation") return;
      if (!KEY.test(key)) {
        setResultAndStopExecution({
          errors: [
            refusal(
              RequestErrorCode.IDEMPOTENCY_KEY_INVALID,
              "Idempotency-Key must be 1 to 255 visible ASCII characters (a UUID is a good choice).",
              400,
            ),
          ],
        });
        return;
      }
      const scope = context.viewer?.id ?? "anonymous";
      const hash = requestHash(print(args.document), args.operationName ?? undefined, args.variableValues);
      const fields = topLevelFields(args.document, args.operationName ?? undefined);
      const stored = await findKey(scope, key);
      if (stored) {
        const answer = await guarded(
          settle(hash, stored.response === null ? await awaitAnswer(scope, key) : stored),
          fields,
        );
        if (answer.replay) replayed.add(context.request);
        setResultAndStopExecution(answer.result);
        return;
      }
      const claim = { scope, key, requestHash: hash, claimed: false, taken: false };
      // Claimed by the mutation's write, as its first statement (services/write.ts).
      context.writes.idempotency = claim;
      // The effect has committed by now: this answer is true whether or not it can be kept. If the database fails
      // to keep it (an outage, a pool exhausted under load), this client still gets it — rather than an error that
      // would send it retrying an action already done — and a later repeat of the key is told its answer was lost.
      const record = async (done: ExecutionResult) => {
        // What is kept is bounded: a large answer, or one beyond its owner's hourly budget, leaves the key alone
        // (a repeat is told the answer was lost, and nothing is applied twice).
        const bytes = Buffer.byteLength(JSON.stringify(done));
        const kept =
          bytes <= MAX_KEPT_ANSWER_BYTES &&
          (await chargeKeptAnswer(bytes, context.viewer?.id ?? null, context.clientAddress));
        if (!kept) logger().info({ bytes, key: keyId(key) }, "idempotency: answer not kept (size or budget)");
        return recordAnswer(claim, kept ? done : null).catch((error: unknown) => {
          // The key by its SHA-256, as the table keeps it: the key itself unseals answers.
          logger().warn(
            { err: error, key: keyId(key) },
            "idempotency: answer not recorded; repeats of this key will be refused",
          );
          return true;
        });
      };
      return {
        async onExecuteDone({ result, setResult }) {
          if (!("data" in result) && !("errors" in result)) return; // a stream: mutations never are
          // What is replayed: the answer itself, not this response's metadata (request id, statistics).
          const done: ExecutionResult = { data: result.data, ...(result.errors ? { errors: result.errors } : {}) };
          if (!claim.claimed && !claim.taken) {
            // Nothing committed in a transaction. Another request may hold the key (it claimed it after this one
            // looked): its answer is the one. Otherwise a clean answer is recorded; an error is not (nothing
            // happened, so the client may simply retry with the same key).
            const holder = await findKey(scope, key);
            if (!holder && (done.errors?.length || !done.data || hasPayloadError(done.data))) return;
            if (!holder && (await record(done))) return;
          } else if (claim.claimed && (await record(done))) return;
          // Another request holds the key: its answer is this one's (this one's work was rolled back, or found
          // done by the other).
          const answer = await guarded(settle(hash, await awaitAnswer(scope, key)), fields);
          if (answer.replay) replayed.add(context.request);
          setResult(answer.result);
        },
      };
    },
    onResponse({ request, response }) {
      if (replayed.has(request)) response.headers.set("Idempotent-Replayed", "true");
    },
  };
}

/** The operation's top-level fields by response key (an alias, or the field's name). */
function topLevelFields(document: DocumentNode, operationName: string | undefined): Map<string, string> {
  const fields = new Map<string, string>();
  for (const selection of getOperationAST(document, operationName)?.selectionSet.selections ?? []) {
    if (selection.kind === Kind.FIELD) fields.set(selection.alias?.value ?? selection.name.value, selection.name.value);
  }
  return fields;
}

/**
 * A replay that would hand out session tokens again (signUp, logIn, refreshSession) is given only while nothing
 * has used them: otherwise whoever repeats the request is not the client that never got its answer (see
 * services/auth.ts, mayRepeatSessionAnswer).
 */
async function guarded(
  answer: { result: ExecutionResult; replay: boolean },
  fields: Map<string, string>,
): Promise<{ result: ExecutionResult; replay: boolean }> {
  if (!answer.replay) return answer;
  for (const [responseKey, payload] of Object.entries(answer.result.data ?? {})) {
    const session = (payload as { session?: Record<string, unknown> } | null)?.session;
    if (!session || typeof session !== "object") continue;
    const tokens: IssuedTokens = {
      accessToken: typeof session.accessToken === "string" ? session.accessToken : undefined,
      refreshToken: typeof session.refreshToken === "string" ? session.refreshToken : undefined,
    };
    if (await mayRepeatSessionAnswer(tokens, fields.get(responseKey) === "refreshSession")) continue;
    return {
      replay: false,
      result: {
        errors: [
          refusal(
            ErrorCode.UNAUTHENTICATED,
            "The tokens this request was answered with have been used since. Sign in again.",
            401,
          ),
        ],
      },
    };
  }
  return answer;
}

/** Whether a mutation's payload is one of its typed errors (`... on Error`): nothing was done. */
function hasPayloadError(data: Record<string, unknown>): boolean {
  return Object.values(data).some((payload) => {
    if (typeof payload !== "object" || payload === null) return false;
    const { __typename } = payload as { __typename?: unknown };
    return (
      (typeof __typename === "string" && __typename.endsWith("Error")) || ("code" in payload && "message" in payload)
    );
  });
}

/** What to answer a repeat of a key, given the key's row (null: it expired or was never committed). */
function settle(
  hash: string,
  stored: Awaited<ReturnType<typeof findKey>>,
): { result: ExecutionResult; replay: boolean } {
  if (stored && stored.requestHash !== hash) {
    return {
      replay: false,
      result: {
        errors: [
          refusal(
            RequestErrorCode.IDEMPOTENCY_KEY_REUSED,
            "This Idempotency-Key was used for another operation or other variables. Use a new key for a new request.",
            422,
          ),
        ],
      },
    };
  }
  if (stored?.response && stored.response !== NOT_KEPT) {
    return { replay: true, result: stored.response as ExecutionResult };
  }
  return {
    replay: false,
    result: {
      errors: [
        refusal(
          RequestErrorCode.IDEMPOTENCY_KEY_IN_USE,
          stored && (stored.response === NOT_KEPT || Date.now() - stored.createdAt.getTime() > LOST_AFTER_MS)
            ? "A request with this Idempotency-Key was applied, but its answer was lost. Reload instead of retrying."
            : "A request with this Idempotency-Key is still being processed. Retry in a second to get its answer.",
          409,
          1,
        ),
      ],
    },
  };
}

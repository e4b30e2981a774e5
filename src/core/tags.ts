// Tag invalidation, the design both backends follow (README, "Tags"): client-side
// invalidation times, as bentocache does, with the gaps it leaves closed.
//
// - Each (scope, tag) has one small record: when it was last invalidated (0:
//   never). A tagged entry stores its tags and when its computation started;
//   it is valid only while every one of its tags' records exists and was last
//   invalidated before that start. `invalidateTags` writes one record per tag:
//   no scan, no list of members to keep in step.
// - A record must outlive every entry that carries it, or an entry would come
//   back to life when its tag's record expires: every tagged write extends its
//   tags' records to its own lifetime (ttl + grace), creating them if needed.
//   A record that is missing anyway (evicted by a full server or a bounded
//   memory cache, cleared) makes its entries misses, never valid again.
// - A computation that started before an invalidation and is stored after it
//   finds the record the invalidation left, so it is invalid on arrival. An
//   invalidation of a tag no live entry carries leaves a record that lives
//   `TAG_GUARD_MS`, and a tagged write whose computation started longer ago
//   than that is not stored (it could have missed the record).

/** How long an invalidation record lives when no live entry carries its tag, and the oldest computation a tagged write accepts: 24 h. */
export const TAG_GUARD_MS = 24 * 60 * 60 * 1000;

/** Whether a tagged value computed since `startedAt` is too old to store (see `TAG_GUARD_MS`). */
export function tooOldToTag(startedAt: number, now: number): boolean {
  return now - startedAt > TAG_GUARD_MS;
}

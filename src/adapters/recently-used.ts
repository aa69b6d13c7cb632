/**
 * Sets `key` in `map` as its most recently used entry and evicts the least recently used beyond
 * `capacity`. Map iteration follows insertion order, so re-inserting moves a key to the end and the
 * first key is the oldest: a bounded cache with no structure beyond the Map.
 */
export function setRecentlyUsed<K, V>(map: Map<K, V>, key: K, value: V, capacity: number): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > capacity) {
    const oldest = map.keys().next();
    if (!oldest.done) map.delete(oldest.value);
  }
}

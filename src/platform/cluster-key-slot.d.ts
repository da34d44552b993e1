// cluster-key-slot (a dependency of ioredis, which computes slots with it) ships no types.
declare module "cluster-key-slot" {
  /** The Redis Cluster hash slot of a key (its `{tag}` when it has one). */
  export default function calculateSlot(key: string | Buffer): number;
}

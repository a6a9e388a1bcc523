/** Raw publishing to the node-events exchange, as an agent (or a broken client) would. */
import amqp from "amqplib";
import { EXCHANGES, nodeEventRoutingKey, routingKeyOfNodeEvent, runChunkWire, type RunChunkEvent } from "../../src/messaging/contracts.js";

export interface EventPublisher {
  publish(event: Record<string, unknown> & { nodeId: string; type: string }, routingKey?: string): Promise<void>;
  publishRaw(body: Buffer, routingKey: string, contentType?: string): Promise<void>;
  /** A `run.chunk` as the agent publishes it: its bytes as the body, its other fields in a header. */
  publishChunk(chunk: RunChunkEvent): Promise<void>;
  close(): Promise<void>;
}

/**
 * Publishes as the broker user in `url` (a node's own, see TestEnv.nodeAmqpUrl), setting `user_id`
 * to it as the agent does.
 */
export async function createEventPublisher(url: string): Promise<EventPublisher> {
  const connection = await amqp.connect(url);
  const channel = await connection.createConfirmChannel();
  const userId = decodeURIComponent(new URL(url).username);
  const send = (body: Buffer, routingKey: string, contentType: string, headers?: Record<string, string>) =>
    new Promise<void>((resolve, reject) =>
      channel.publish(EXCHANGES.nodeEvents, routingKey, body, { persistent: true, contentType, userId, headers }, (err) => (err ? reject(err) : resolve())),
    );
  return {
    publish: (event, routingKey) => send(Buffer.from(JSON.stringify(event)), routingKey ?? nodeEventRoutingKey(event.nodeId, event.type), "application/json"),
    publishRaw: (body, routingKey, contentType = "application/json") => send(body, routingKey, contentType),
    publishChunk: (chunk) => {
      const { body, headers } = runChunkWire(chunk);
      return send(body, routingKeyOfNodeEvent(chunk), "application/octet-stream", headers);
    },
    async close() {
      await channel.close().catch(() => undefined);
      await connection.close().catch(() => undefined);
    },
  };
}

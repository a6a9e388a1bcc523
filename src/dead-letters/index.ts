/** Dead letters: messages the broker dead-lettered, kept in PostgreSQL for operators (`deadLetters` query). */
export { DeadLetter } from "./dead-letter.entity.js";
export { DeadLetterResolver } from "./dead-letter.resolver.js";
export { createDeadLetterConsumer, type DeadLetterConsumer } from "./dead-letter.consumer.js";
export { listDeadLetters, pruneDeadLetters, storeDeadLetter, type DeadLetterData } from "./dead-letter.service.js";

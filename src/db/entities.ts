/** Every entity class, listed explicitly: discovery by a folder glob would depend on whether the code runs from src/ or from dist/. */
import { LogLine } from "../logs/log-line.entity.js";
import { OutboxMessage } from "../messaging/outbox.entity.js";
import { Node } from "../nodes/node.entity.js";
import { DeadLetter } from "../operations/dead-letter.entity.js";
import { Run } from "../runs/run.entity.js";
import { Tool } from "../tools/tool.entity.js";
import { Task } from "../workflows/task.entity.js";
import { Workflow } from "../workflows/workflow.entity.js";

export const entities = [Node, Tool, Workflow, Task, Run, LogLine, OutboxMessage, DeadLetter];

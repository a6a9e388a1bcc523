/** Every entity class, listed explicitly: MikroORM discovery by folder globs breaks under bundlers and ESM loaders. */
import { Artifact } from "../artifacts/index.js";
import { ApiToken, RoleGrant, User } from "../auth/index.js";
import { AuditEvent } from "../audit/index.js";
import { DeadLetter } from "../dead-letters/index.js";
import { LogLine } from "../logs/index.js";
import { OutboxMessage } from "../messaging/outbox.entity.js";
import { Node, NodeOperator } from "../nodes/index.js";
import { Project, ProjectMember, ProjectNode } from "../projects/index.js";
import { Run } from "../runs/index.js";
import { Tool } from "../tools/index.js";
import { Task, Workflow } from "../workflows/index.js";

export const entities = [Node, Tool, Workflow, Task, Run, LogLine, OutboxMessage, DeadLetter, User, ApiToken, RoleGrant, Project, ProjectMember, ProjectNode, NodeOperator, AuditEvent, Artifact];

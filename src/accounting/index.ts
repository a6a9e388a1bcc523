/** The accounting domain: usage of finished runs, summed by node, tool, user and day. */
export { AccountingResolver } from "./accounting.resolver.js";
export { accounting, AccountingDimension } from "./accounting.service.js";

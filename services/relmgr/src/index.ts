/**
 * relmgr: the relationship manager (foreign-key graph, table groups, key maps for targets that
 * generate their own keys). Not built yet; this entry point reserves the package and its name.
 */
export const serviceName = "relmgr";

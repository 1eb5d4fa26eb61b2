/**
 * dpu: consumes a table group from JetStream and writes it to the target (map -> relate ->
 * statement generator -> batched transactional executor). Not built yet; this entry point reserves
 * the package and its name.
 */
export const serviceName = "dpu";

#!/bin/bash
# Sourced by the mysql image's entrypoint on the source's first start (docker-entrypoint-initdb.d,
# after 01-schema.sql): the user dfs connects as, with the password from the Docker secret
# source_password. The password is never echoed or put on a command line.
#   SELECT, REPLICATION SLAVE, REPLICATION CLIENT: capture (binlog, schema), relmgr, the DPU's
#     source session; LOCK TABLES: snapshots of tables without a key (docs/snapshot.md);
#   _dfs.*: capture's snapshot signal table (capture.snapshot.signalTable).
dfs_password="$(cat /run/secrets/source_password)"
dfs_password="${dfs_password//\\/\\\\}"
dfs_password="${dfs_password//\'/\'\'}"
docker_process_sql --database=mysql <<SQL
CREATE USER 'dfs'@'%' IDENTIFIED BY '${dfs_password}';
GRANT SELECT, REPLICATION SLAVE, REPLICATION CLIENT, LOCK TABLES ON *.* TO 'dfs'@'%';
GRANT CREATE, INSERT, UPDATE, DELETE, DROP, SELECT ON \`_dfs\`.* TO 'dfs'@'%';
SQL
unset dfs_password

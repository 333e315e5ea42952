// Talks to PostgreSQL the way Metabase does, through the real PostgreSQL JDBC driver.
//
// Run: java -cp /usr/share/java/postgresql.jar MetabaseProbe.java URL USER
// (password in the environment variable PROBE_PASSWORD, never an argument).
// Reads one step per line on stdin and prints one JSON object per step on stdout:
//   #sync SCHEMA,...   Metabase's sync: DatabaseMetaData getSchemas, getTables (its table
//                      types), getColumns, getPrimaryKeys, getImportedKeys, then its
//                      "can read" probe SELECT TRUE FROM t WHERE 1 <> 1 LIMIT 0 per table
//   #reconnect         close the connection and open a new one (a new pooled connection)
//   anything else      a native question: Statement.execute in autocommit after
//                      setReadOnly(true), as Metabase runs it; the first rows are returned
import java.sql.*;
import java.util.*;

public class MetabaseProbe {
    static final String[] TABLE_TYPES = {
        "TABLE", "PARTITIONED TABLE", "VIEW", "FOREIGN TABLE", "MATERIALIZED VIEW"
    };

    public static void main(String[] args) throws Exception {
        String url = args[0];
        String user = args[1];
        String password = System.getenv("PROBE_PASSWORD");
        Scanner in = new Scanner(System.in, "UTF-8");
        Connection conn = null;
        while (in.hasNextLine()) {
            String line = in.nextLine();
            if (line.isBlank()) continue;
            try {
                if (conn == null) conn = open(url, user, password);
                if (line.equals("#reconnect")) {
                    conn.close();
                    conn = open(url, user, password);
                    System.out.println("{\"step\":" + q(line) + ",\"ok\":true}");
                } else if (line.startsWith("#sync ")) {
                    System.out.println(sync(conn, line.substring(6).split(",")));
                } else {
                    System.out.println(question(conn, line));
                }
            } catch (SQLException e) {
                System.out.println("{\"step\":" + q(line) + ",\"ok\":false,\"sqlstate\":"
                    + q(e.getSQLState()) + ",\"message\":" + q(e.getMessage()) + "}");
                if (conn != null && conn.isClosed()) conn = null;
            }
            System.out.flush();
        }
        if (conn != null) conn.close();
    }

    static Connection open(String url, String user, String password) throws SQLException {
        Properties props = new Properties();
        props.setProperty("user", user);
        props.setProperty("password", password);
        props.setProperty("ApplicationName", "Metabase probe");
        Connection conn = DriverManager.getConnection(url, props);
        conn.setAutoCommit(true);
        conn.setReadOnly(true); // ignored by the driver in autocommit: the role must hold
        return conn;
    }

    static String question(Connection conn, String text) throws SQLException {
        conn.setAutoCommit(true);
        conn.setReadOnly(true);
        try (Statement st = conn.createStatement()) {
            StringBuilder rows = new StringBuilder("[");
            boolean hasResult = st.execute(text);
            // A multi-statement question: walk every result, keep the last rows.
            while (true) {
                if (hasResult) {
                    rows = new StringBuilder("[");
                    try (ResultSet rs = st.getResultSet()) {
                        int columns = rs.getMetaData().getColumnCount();
                        int n = 0;
                        while (rs.next() && n < 20) {
                            if (n++ > 0) rows.append(',');
                            rows.append('[');
                            for (int i = 1; i <= columns; i++) {
                                if (i > 1) rows.append(',');
                                rows.append(q(rs.getString(i)));
                            }
                            rows.append(']');
                        }
                    }
                    rows.append(']');
                } else if (st.getUpdateCount() == -1) {
                    break;
                }
                hasResult = st.getMoreResults();
            }
            String r = rows.toString();
            return "{\"step\":" + q(text) + ",\"ok\":true,\"rows\":" + (r.equals("[") ? "[]" : r) + "}";
        }
    }

    static String sync(Connection conn, String[] schemas) throws SQLException {
        DatabaseMetaData md = conn.getMetaData();
        StringBuilder out = new StringBuilder("{\"step\":\"#sync\",\"ok\":true,\"schemas\":[");
        try (ResultSet rs = md.getSchemas()) {
            boolean first = true;
            while (rs.next()) {
                if (!first) out.append(',');
                first = false;
                out.append(q(rs.getString("TABLE_SCHEM")));
            }
        }
        out.append("],\"tables\":[");
        boolean firstTable = true;
        for (String schema : schemas) {
            List<String[]> tables = new ArrayList<>();
            try (ResultSet rs = md.getTables(null, schema, "%", TABLE_TYPES)) {
                while (rs.next()) {
                    tables.add(new String[] {rs.getString("TABLE_NAME"), rs.getString("TABLE_TYPE")});
                }
            }
            for (String[] t : tables) {
                int columns = count(md.getColumns(null, schema, t[0], "%"));
                int pks = count(md.getPrimaryKeys(null, schema, t[0]));
                int fks = count(md.getImportedKeys(null, schema, t[0]));
                String probe = "SELECT TRUE AS \"_\" FROM \"" + schema.replace("\"", "\"\"")
                    + "\".\"" + t[0].replace("\"", "\"\"") + "\" WHERE 1 <> 1 LIMIT 0";
                String state = null;
                try (Statement st = conn.createStatement()) {
                    st.execute(probe);
                } catch (SQLException e) {
                    state = e.getSQLState();
                }
                if (!firstTable) out.append(',');
                firstTable = false;
                out.append("{\"schema\":").append(q(schema))
                    .append(",\"name\":").append(q(t[0]))
                    .append(",\"type\":").append(q(t[1]))
                    .append(",\"columns\":").append(columns)
                    .append(",\"primary_keys\":").append(pks)
                    .append(",\"foreign_keys\":").append(fks)
                    .append(",\"readable\":").append(state == null)
                    .append(",\"sqlstate\":").append(q(state)).append('}');
            }
        }
        return out.append("]}").toString();
    }

    static int count(ResultSet rs) throws SQLException {
        int n = 0;
        try (rs) {
            while (rs.next()) n++;
        }
        return n;
    }

    static String q(String s) {
        if (s == null) return "null";
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            switch (c) {
                case '"': b.append("\\\""); break;
                case '\\': b.append("\\\\"); break;
                case '\n': b.append("\\n"); break;
                case '\r': b.append("\\r"); break;
                case '\t': b.append("\\t"); break;
                default:
                    if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
                    else b.append(c);
            }
        }
        return b.append('"').toString();
    }
}

// A JDBC driver whose connections do nothing: the pool is all that is
// measured. URL: jdbc:stub:<create delay in ms>. Counts connect() calls.

import java.lang.reflect.Proxy;
import java.sql.Connection;
import java.sql.Driver;
import java.sql.DriverPropertyInfo;
import java.sql.SQLFeatureNotSupportedException;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.logging.Logger;

public final class StubDriver implements Driver {
    static final String PREFIX = "jdbc:stub:";
    /** connect() calls so far (a create in flight counts). */
    static final AtomicInteger creates = new AtomicInteger();

    @Override
    public Connection connect(String url, Properties info) {
        if (!acceptsURL(url)) return null; // JDBC: not our URL
        creates.incrementAndGet();
        long delayMs = Long.parseLong(url.substring(PREFIX.length()));
        if (delayMs > 0) {
            try {
                Thread.sleep(delayMs);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        return stubConnection();
    }

    /** Every Connection method answers as an idle, healthy, auto-commit
     *  connection would; anything else returns the type's default. */
    static Connection stubConnection() {
        boolean[] closed = {false};
        return (Connection) Proxy.newProxyInstance(
                StubDriver.class.getClassLoader(), new Class<?>[] {Connection.class},
                (proxy, m, args) -> {
                    switch (m.getName()) {
                        case "isValid":
                            return !closed[0];
                        case "isClosed":
                            return closed[0];
                        case "close":
                            closed[0] = true;
                            return null;
                        case "getAutoCommit":
                            return true;
                        case "getTransactionIsolation":
                            return Connection.TRANSACTION_READ_COMMITTED;
                        case "isWrapperFor":
                            return false;
                        case "hashCode":
                            return System.identityHashCode(proxy);
                        case "equals":
                            return proxy == args[0];
                        case "toString":
                            return "StubConnection@" + System.identityHashCode(proxy);
                        default:
                            Class<?> r = m.getReturnType();
                            if (r == boolean.class) return false;
                            if (r == int.class) return 0;
                            if (r == long.class) return 0L;
                            return null;
                    }
                });
    }

    @Override
    public boolean acceptsURL(String url) {
        return url != null && url.startsWith(PREFIX);
    }

    @Override
    public DriverPropertyInfo[] getPropertyInfo(String url, Properties info) {
        return new DriverPropertyInfo[0];
    }

    @Override
    public int getMajorVersion() {
        return 1;
    }

    @Override
    public int getMinorVersion() {
        return 0;
    }

    @Override
    public boolean jdbcCompliant() {
        return false;
    }

    @Override
    public Logger getParentLogger() throws SQLFeatureNotSupportedException {
        throw new SQLFeatureNotSupportedException();
    }
}

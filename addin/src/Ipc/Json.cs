// JSON for the IPC layer and the state file: JavaScriptSerializer (System.Web.Extensions, in every
// .NET Framework 4.x) with its length limit raised, plus a canonical form used to compare field sets.
using System;
using System.Collections;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;
using System.Web.Script.Serialization;

namespace OpConnect.Outlook.Ipc
{
    /// <summary>Parse and write JSON as Dictionary&lt;string, object&gt; / object[] / string / number / bool / null.</summary>
    public static class Json
    {
        // INTERFACE §4 allows frames up to 16 MiB; the serializer's default (2 M characters) is lower.
        public const int MaxChars = 32 * 1024 * 1024;

        static JavaScriptSerializer NewSerializer()
        {
            return new JavaScriptSerializer { MaxJsonLength = MaxChars, RecursionLimit = 256 };
        }

        public static object Parse(string text)
        {
            return Normalize(NewSerializer().DeserializeObject(text));
        }

        public static Dictionary<string, object> ParseObject(string text)
        {
            return Parse(text) as Dictionary<string, object>;
        }

        public static string Write(object value)
        {
            var sb = new StringBuilder();
            WriteTo(sb, value, false);
            return sb.ToString();
        }

        /// <summary>The canonical text of a value: keys sorted, numbers in one form; equal values, equal text.</summary>
        public static string Canonical(object value)
        {
            var sb = new StringBuilder();
            WriteTo(sb, Normalize(value), true);
            return sb.ToString();
        }

        /// <summary>Numbers become long or decimal, arrays object[], objects Dictionary (ordinal keys).</summary>
        public static object Normalize(object value)
        {
            if (value == null || value is string || value is bool) return value;
            if (value is int || value is long || value is short || value is byte) return Convert.ToInt64(value);
            if (value is decimal || value is double || value is float)
            {
                var d = Convert.ToDecimal(value, CultureInfo.InvariantCulture);
                if (d == Math.Truncate(d) && Math.Abs(d) < long.MaxValue) return (long)d;
                return d;
            }
            var dict = value as IDictionary<string, object>;
            if (dict != null)
            {
                var copy = new Dictionary<string, object>(StringComparer.Ordinal);
                foreach (var kv in dict) copy[kv.Key] = Normalize(kv.Value);
                return copy;
            }
            if (value is IEnumerable)
            {
                return ((IEnumerable)value).Cast<object>().Select(Normalize).ToArray();
            }
            return value.ToString();
        }

        static void WriteTo(StringBuilder sb, object value, bool sorted)
        {
            if (value == null) { sb.Append("null"); return; }
            var s = value as string;
            if (s != null) { WriteString(sb, s); return; }
            if (value is bool) { sb.Append((bool)value ? "true" : "false"); return; }
            if (value is int || value is long || value is short || value is byte)
            {
                sb.Append(Convert.ToInt64(value).ToString(CultureInfo.InvariantCulture));
                return;
            }
            if (value is decimal || value is double || value is float)
            {
                sb.Append(Convert.ToDecimal(value, CultureInfo.InvariantCulture).ToString(CultureInfo.InvariantCulture));
                return;
            }
            var dict = value as IDictionary<string, object>;
            if (dict != null)
            {
                IEnumerable<KeyValuePair<string, object>> pairs = dict;
                if (sorted) pairs = dict.OrderBy(kv => kv.Key, StringComparer.Ordinal);
                sb.Append('{');
                bool first = true;
                foreach (var kv in pairs)
                {
                    if (!first) sb.Append(',');
                    first = false;
                    WriteString(sb, kv.Key);
                    sb.Append(':');
                    WriteTo(sb, kv.Value, sorted);
                }
                sb.Append('}');
                return;
            }
            var list = value as IEnumerable;
            if (list != null)
            {
                sb.Append('[');
                bool first = true;
                foreach (var item in list)
                {
                    if (!first) sb.Append(',');
                    first = false;
                    WriteTo(sb, item, sorted);
                }
                sb.Append(']');
                return;
            }
            WriteString(sb, value.ToString());
        }

        static void WriteString(StringBuilder sb, string s)
        {
            sb.Append('"');
            foreach (char c in s)
            {
                switch (c)
                {
                    case '"': sb.Append("\\\""); break;
                    case '\\': sb.Append("\\\\"); break;
                    case '\n': sb.Append("\\n"); break;
                    case '\r': sb.Append("\\r"); break;
                    case '\t': sb.Append("\\t"); break;
                    default:
                        if (c < 0x20) sb.Append("\\u").Append(((int)c).ToString("x4"));
                        else sb.Append(c);
                        break;
                }
            }
            sb.Append('"');
        }

        // Accessors for parsed objects: absent or wrong-typed members read as the default.

        public static string Str(IDictionary<string, object> d, string key)
        {
            object v;
            if (d == null || !d.TryGetValue(key, out v) || v == null) return null;
            return v as string ?? Convert.ToString(v, CultureInfo.InvariantCulture);
        }

        public static long Long(IDictionary<string, object> d, string key, long fallback)
        {
            object v;
            if (d == null || !d.TryGetValue(key, out v) || v == null || v is string || v is bool) return fallback;
            return Convert.ToInt64(v, CultureInfo.InvariantCulture);
        }

        public static bool Bool(IDictionary<string, object> d, string key)
        {
            object v;
            return d != null && d.TryGetValue(key, out v) && v is bool && (bool)v;
        }

        public static Dictionary<string, object> Obj(IDictionary<string, object> d, string key)
        {
            object v;
            if (d == null || !d.TryGetValue(key, out v)) return null;
            return v as Dictionary<string, object>;
        }

        public static object[] Arr(IDictionary<string, object> d, string key)
        {
            object v;
            if (d == null || !d.TryGetValue(key, out v)) return new object[0];
            return v as object[] ?? new object[0];
        }

        public static Dictionary<string, object> O(params object[] keyValues)
        {
            var d = new Dictionary<string, object>(StringComparer.Ordinal);
            for (int i = 0; i + 1 < keyValues.Length; i += 2) d[(string)keyValues[i]] = keyValues[i + 1];
            return d;
        }
    }
}

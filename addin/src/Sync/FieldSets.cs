// Field-set arithmetic, pure: canonical comparison, hashes for the link, and the patch between two
// versions (CONTRACT: a key set to null clears the property; absent keys are left alone).
using System;
using System.Collections.Generic;
using System.Linq;
using System.Security.Cryptography;
using System.Text;
using OpConnect.Outlook.Ipc;

namespace OpConnect.Outlook.Sync
{
    public static class FieldSets
    {
        /// <summary>Keys the agent reports but Outlook cannot write (CONTRACT: RO).</summary>
        public static readonly HashSet<string> ReadOnly = new HashSet<string>
        {
            "GlobalUid", "Unsupported", "StartUTC", "EndUTC", "IsRecurring", "HasPicture",
        };

        public static bool Same(Dictionary<string, object> a, Dictionary<string, object> b)
        {
            return Json.Canonical(a ?? new Dictionary<string, object>()) == Json.Canonical(b ?? new Dictionary<string, object>());
        }

        /// <summary>A short stable hash of a field set (stored on the item as a named property).</summary>
        public static string Hash(Dictionary<string, object> fields)
        {
            using (var sha = SHA256.Create())
            {
                var bytes = sha.ComputeHash(Encoding.UTF8.GetBytes(Json.Canonical(fields ?? new Dictionary<string, object>())));
                return Convert.ToBase64String(bytes, 0, 12);
            }
        }

        /// <summary>The fields of `remote` restricted to `keys` (what the property table maps).</summary>
        public static Dictionary<string, object> Restrict(Dictionary<string, object> remote, ICollection<string> keys)
        {
            var d = new Dictionary<string, object>(StringComparer.Ordinal);
            if (remote == null) return d;
            foreach (var kv in remote)
            {
                if (keys != null && !keys.Contains(kv.Key)) continue;
                if (ReadOnly.Contains(kv.Key) || kv.Value == null) continue;
                d[kv.Key] = Json.Normalize(kv.Value);
            }
            return d;
        }

        /// <summary>The patch turning `from` into `to`: changed or new keys with their value, dropped keys null.</summary>
        public static Dictionary<string, object> Diff(Dictionary<string, object> from, Dictionary<string, object> to)
        {
            from = from ?? new Dictionary<string, object>();
            to = to ?? new Dictionary<string, object>();
            var patch = new Dictionary<string, object>(StringComparer.Ordinal);
            foreach (var kv in to)
            {
                if (ReadOnly.Contains(kv.Key)) continue;
                object old;
                if (!from.TryGetValue(kv.Key, out old) || Json.Canonical(old) != Json.Canonical(kv.Value))
                    patch[kv.Key] = kv.Value;
            }
            foreach (var key in from.Keys)
                if (!to.ContainsKey(key) && !ReadOnly.Contains(key)) patch[key] = null;
            return patch;
        }

        /// <summary>Outlook's list members carry only a name and an address: members the agent knows by
        /// UID alone are kept (a patch never drops them), and UIDs are carried over by address.</summary>
        public static object[] MergeMembers(Dictionary<string, object> from, object[] members)
        {
            var result = new List<object>();
            var baseMembers = Json.Arr(from, "Members").OfType<Dictionary<string, object>>().ToList();
            foreach (var m in (members ?? new object[0]).OfType<Dictionary<string, object>>())
            {
                var copy = new Dictionary<string, object>(m, StringComparer.Ordinal);
                var address = Json.Str(m, "Address");
                var known = baseMembers.FirstOrDefault(b => address != null &&
                    string.Equals(Json.Str(b, "Address"), address, StringComparison.OrdinalIgnoreCase));
                if (known != null && Json.Str(known, "Uid") != null && !copy.ContainsKey("Uid")) copy["Uid"] = Json.Str(known, "Uid");
                result.Add(copy);
            }
            foreach (var b in baseMembers)
                if (Json.Str(b, "Address") == null && Json.Str(b, "Uid") != null) result.Add(b);
            return result.ToArray();
        }
    }
}

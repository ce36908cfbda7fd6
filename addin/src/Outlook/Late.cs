// Late binding by member name (the C# runtime binder, which speaks IDispatch to COM objects and
// reflection to the test stand-in alike), and the COM hygiene rules: release what you got, never chain.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.CSharp.RuntimeBinder;

namespace OpConnect.Outlook.Outlook
{
    public static class Late
    {
        static readonly Dictionary<string, CallSite<Func<CallSite, object, object>>> getters =
            new Dictionary<string, CallSite<Func<CallSite, object, object>>>();
        static readonly Dictionary<string, CallSite<Func<CallSite, object, object, object>>> setters =
            new Dictionary<string, CallSite<Func<CallSite, object, object, object>>>();

        /// <summary>target.NAME</summary>
        public static object Get(object target, string name)
        {
            CallSite<Func<CallSite, object, object>> site;
            lock (getters)
            {
                if (!getters.TryGetValue(name, out site))
                {
                    site = CallSite<Func<CallSite, object, object>>.Create(Binder.GetMember(CSharpBinderFlags.None, name, typeof(Late),
                        new[] { CSharpArgumentInfo.Create(CSharpArgumentInfoFlags.None, null) }));
                    getters[name] = site;
                }
            }
            return site.Target(site, target);
        }

        /// <summary>target.NAME = value</summary>
        public static void Set(object target, string name, object value)
        {
            CallSite<Func<CallSite, object, object, object>> site;
            lock (setters)
            {
                if (!setters.TryGetValue(name, out site))
                {
                    site = CallSite<Func<CallSite, object, object, object>>.Create(Binder.SetMember(CSharpBinderFlags.None, name, typeof(Late),
                        new[] { CSharpArgumentInfo.Create(CSharpArgumentInfoFlags.None, null), CSharpArgumentInfo.Create(CSharpArgumentInfoFlags.None, null) }));
                    setters[name] = site;
                }
            }
            site.Target(site, target, value);
        }

        /// <summary>Releases a COM object (no-op for the stand-in): every intermediate object, once.</summary>
        public static void Release(object o)
        {
            if (o != null && Marshal.IsComObject(o)) Marshal.ReleaseComObject(o);
        }

        /// <summary>Outlook's "no date": 1 January 4501.</summary>
        public static readonly DateTime NoDate = new DateTime(4501, 1, 1);

        public static bool IsNoDate(DateTime d) { return d.Year >= 4500; }

        public const string DateFormat = "yyyy-MM-dd";
        public const string LocalFormat = "yyyy-MM-ddTHH:mm:ss";

        public static DateTime ParseDate(string s)
        {
            return DateTime.ParseExact(s.Length > 10 ? s.Substring(0, 10) : s, DateFormat, CultureInfo.InvariantCulture);
        }

        public static DateTime ParseLocal(string s)
        {
            if (s.Length == 10) return ParseDate(s);
            return DateTime.ParseExact(s.Substring(0, 19), LocalFormat, CultureInfo.InvariantCulture);
        }
    }
}

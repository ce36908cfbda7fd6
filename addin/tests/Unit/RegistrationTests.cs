// The per-user registration in installer/windows/opconnect.wxs matches the assembly's own [Guid],
// [ProgId], class and full name; the host does nothing slow when Outlook connects or shuts down.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Xml.Linq;
using NUnit.Framework;
using OpConnect.Outlook.Host;

namespace OpConnect.Outlook.Tests
{
    [TestFixture]
    public class RegistrationTests
    {
        static readonly XNamespace Wix = "http://wixtoolset.org/schemas/v4/wxs";

        /// <summary>installer/windows/opconnect.wxs: $OPCONNECT_WXS, else found above the test assembly or the working directory.</summary>
        static string WxsPath()
        {
            var env = Environment.GetEnvironmentVariable("OPCONNECT_WXS");
            if (!string.IsNullOrEmpty(env)) return env;
            foreach (var start in new[] { AppDomain.CurrentDomain.BaseDirectory, Directory.GetCurrentDirectory() })
            {
                for (var dir = new DirectoryInfo(start); dir != null; dir = dir.Parent)
                {
                    var candidate = Path.Combine(Path.Combine(Path.Combine(dir.FullName, "installer"), "windows"), "opconnect.wxs");
                    if (File.Exists(candidate)) return candidate;
                }
            }
            Assert.Fail("installer/windows/opconnect.wxs not found above " + AppDomain.CurrentDomain.BaseDirectory + "; set OPCONNECT_WXS");
            return null;
        }

        /// <summary>Every RegistryValue as "HKCU\key path|name" → (type, value).</summary>
        static Dictionary<string, Tuple<string, string>> Values()
        {
            var doc = XDocument.Load(WxsPath());
            var result = new Dictionary<string, Tuple<string, string>>(StringComparer.OrdinalIgnoreCase);
            foreach (var v in doc.Descendants(Wix + "RegistryValue"))
            {
                var keys = v.Ancestors(Wix + "RegistryKey").Reverse().ToList();
                string root = keys.Select(k => (string)k.Attribute("Root")).FirstOrDefault(r => r != null) ?? (string)v.Attribute("Root");
                var path = string.Join("\\", keys.Select(k => (string)k.Attribute("Key")).Concat(new[] { (string)v.Attribute("Key") }).Where(k => k != null));
                result[root + "\\" + path + "|" + ((string)v.Attribute("Name") ?? "")] = Tuple.Create((string)v.Attribute("Type"), (string)v.Attribute("Value"));
            }
            foreach (var k in doc.Descendants(Wix + "RegistryKey").Where(k => (string)k.Attribute("ForceCreateOnInstall") == "yes"))
            {
                var keys = k.AncestorsAndSelf(Wix + "RegistryKey").Reverse().ToList();
                result[(string)keys[0].Attribute("Root") + "\\" + string.Join("\\", keys.Select(x => (string)x.Attribute("Key"))) + "|(key)"] = Tuple.Create("key", "");
            }
            return result;
        }

        static string Value(Dictionary<string, Tuple<string, string>> values, string key, string name)
        {
            Tuple<string, string> v;
            Assert.IsTrue(values.TryGetValue(key + "|" + name, out v), "opconnect.wxs lacks " + key + " " + (name == "" ? "(default)" : name));
            return v.Item2;
        }

        [Test]
        public void The_installer_registers_the_assemblys_own_clsid_and_progid_per_user()
        {
            var type = typeof(Connect);
            var clsid = "{" + ((GuidAttribute)type.GetCustomAttributes(typeof(GuidAttribute), false).Single()).Value.ToUpperInvariant() + "}";
            var progId = ((ProgIdAttribute)type.GetCustomAttributes(typeof(ProgIdAttribute), false).Single()).Value;
            Assert.IsTrue(((ComVisibleAttribute)type.GetCustomAttributes(typeof(ComVisibleAttribute), false).Single()).Value);
            var values = Values();
            var server = @"HKCU\Software\Classes\CLSID\" + clsid + @"\InprocServer32";
            Assert.AreEqual("mscoree.dll", Value(values, server, ""));
            Assert.AreEqual("Both", Value(values, server, "ThreadingModel"));
            Assert.AreEqual(type.FullName, Value(values, server, "Class"));
            Assert.AreEqual(type.Assembly.FullName, Value(values, server, "Assembly"), "the assembly's full name, version included");
            Assert.AreEqual("v4.0.30319", Value(values, server, "RuntimeVersion"));
            StringAssert.StartsWith("file:///", Value(values, server, "CodeBase"));
            Assert.AreEqual(progId, Value(values, @"HKCU\Software\Classes\CLSID\" + clsid + @"\ProgId", ""));
            Assert.IsTrue(values.ContainsKey(@"HKCU\Software\Classes\CLSID\" + clsid + @"\Implemented Categories\{62C8FE65-4EBB-45E7-B440-6E39B2CDBF29}|(key)"));
            Assert.AreEqual(clsid, Value(values, @"HKCU\Software\Classes\" + progId + @"\CLSID", ""));
            var addin = @"HKCU\Software\Microsoft\Office\Outlook\Addins\" + progId;
            Assert.AreEqual("3", Value(values, addin, "LoadBehavior"), "load at start-up");
            Assert.AreEqual("integer", values[addin + "|LoadBehavior"].Item1);
            Assert.IsNotEmpty(Value(values, addin, "FriendlyName"));
            Assert.IsFalse(values.Keys.Any(k => k.StartsWith("HKLM", StringComparison.OrdinalIgnoreCase)), "per user: no administrator rights");
        }

        [Test]
        public void The_office_interfaces_carry_microsofts_guids()
        {
            Assert.AreEqual(new Guid("B65AD801-ABAF-11D0-BB8B-00A0C90F2744"), typeof(IDTExtensibility2).GUID);
            Assert.AreEqual(new Guid("000C0396-0000-0000-C000-000000000046"), typeof(IRibbonExtensibility).GUID);
            Assert.AreEqual(new Guid("00063077-0000-0000-C000-000000000046"), typeof(OpConnect.Outlook.Outlook.ItemsEventsSource).GUID);
        }

        [Test]
        public void Connecting_only_keeps_the_application_and_shutdown_returns_at_once()
        {
            var app = new OpConnect.Outlook.Standin.Application();
            var connect = new Connect();
            Array custom = new object[0];
            var clock = System.Diagnostics.Stopwatch.StartNew();
            connect.OnConnection(app, ext_ConnectMode.ext_cm_Startup, null, ref custom);
            Assert.Less(clock.ElapsedMilliseconds, 100);
            CollectionAssert.IsEmpty(app.Calls, "no object-model call before OnStartupComplete");
            clock.Restart();
            connect.OnBeginShutdown(ref custom);
            connect.OnDisconnection(ext_DisconnectMode.ext_dm_HostShutdown, ref custom);
            Assert.Less(clock.ElapsedMilliseconds, 100);
            StringAssert.Contains("OnSyncNow", connect.GetCustomUI("Microsoft.Outlook.Explorer"));
        }
    }
}
